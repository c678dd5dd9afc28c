var V={float32:Float32Array,int32:Int32Array,uint8:Uint8Array,float16:Uint16Array},y=null;function U(){if(y)return y;y=new Float32Array(65536);for(let t=0;t<65536;t++)y[t]=q(t);return y}function q(t){let e=t&32768?-1:1,n=t>>10&31,r=t&1023;return n===0?e*2**-14*(r/1024):n===31?r?NaN:e*(1/0):e*2**(n-15)*(1+r/1024)}function W(t){if(t instanceof DataView||ArrayBuffer.isView(t))return{buffer:t.buffer,byteOffset:t.byteOffset,byteLength:t.byteLength};if(t instanceof ArrayBuffer)return{buffer:t,byteOffset:0,byteLength:t.byteLength};throw new TypeError("binary array expected a DataView, TypedArray or ArrayBuffer as 'view'")}function k(t){if(t==null)return null;let{dtype:e,shape:n}=t,r=V[e];if(!r)throw new TypeError(`unsupported dtype ${e}`);let{buffer:o,byteOffset:a,byteLength:i}=W(t.view),f=n.reduce((d,g)=>d*g,1);if(f*r.BYTES_PER_ELEMENT!==i)throw new RangeError(`${e} array of shape [${n}] needs ${f*r.BYTES_PER_ELEMENT} bytes, got ${i}`);let p=a%r.BYTES_PER_ELEMENT===0?new r(o,a,f):new r(o.slice(a,a+i));if(e!=="float16")return{data:p,shape:[...n],dtype:e};let l=U(),m=new Float32Array(f);for(let d=0;d<f;d++)m[d]=l[p[d]];return{data:m,shape:[...n],dtype:e}}var E={sequential:["#440154","#482878","#3e4989","#31688e","#26828e","#1f9e89","#35b779","#6ece58","#b5de2b","#fde725"],diverging:["#2166ac","#4393c3","#92c5de","#d1e5f0","#f7f7f7","#fddbc7","#f4a582","#d6604d","#b2182b"],magnitude:["#fff7ec","#fee8c8","#fdd49e","#fdbb84","#fc8d59","#ef6548","#d7301f","#b30000","#7f0000"],categorical:["#4e79a7","#f28e2b","#e15759","#76b7b2","#59a14f","#edc948","#b07aa1","#ff9da7","#9c755f","#17becf","#bcbd22","#1f3b73"]},$=new Map;function v(t){let e=parseInt(t.slice(1),16);return[e>>16&255,e>>8&255,e&255]}function G(t){let e=String(t||"").trim(),n=/^#([0-9a-f]{3})$/i.exec(e);return n?[...n[1]].map(r=>parseInt(r+r,16)):(n=/^#([0-9a-f]{6})$/i.exec(e),n?v(e):(n=/^rgba?\(\s*(\d+)[,\s]+(\d+)[,\s]+(\d+)/i.exec(e),n?n.slice(1,4).map(Number):null))}function Y([t,e,n]){return .2126*t+.7152*e+.0722*n<128}var A=[["#92c5de","#4393c3","#2b5f8a"],["#9e3a2e","#d6604d","#f4a582"]],H=["#5a1f0a","#a63603","#e6550d","#fd8d3c","#fdbe85"];function C(t,e=null){let n=t in E?t:"sequential",r=n==="diverging"||n==="magnitude"?G(e):null,o=r&&Y(r),a=o?`${n}:${r.join(",")}`:n;if($.has(a))return $.get(a);let i=E[n].map(v);o&&n==="diverging"&&(i=[...A[0].map(v),r,...A[1].map(v)]),o&&n==="magnitude"&&(i=[r,...H.map(v)]);let f=new Uint8ClampedArray(256*3);for(let c=0;c<256;c++){let p=c/255*(i.length-1),l=Math.min(Math.floor(p),i.length-2),m=p-l;for(let d=0;d<3;d++)f[c*3+d]=Math.round(i[l][d]*(1-m)+i[l+1][d]*m)}return $.set(a,f),f}function R(t,e){let n=1/0,r=-1/0;for(let a=0;a<t.length;a++){let i=t[a];i<n&&(n=i),i>r&&(r=i)}n===1/0&&(n=r=0);let o=!1;if(e.clip!=null&&e.scale!=="diverging"){let[a,i]=_(t,[1-e.clip,e.clip]);o=a>n||i<r,n=a,r=i}if(e.scale==="diverging"){let a=e.center??0,i=Math.max(Math.abs(n-a),Math.abs(r-a))||1;if(e.clip!=null){let f=Float64Array.from(t,p=>Math.abs(p-a)),c=_(f,[e.clip])[0];c>0&&c<i&&(i=c,o=!0)}n=a-i,r=a+i}return e.vmin!=null&&(n=e.vmin),e.vmax!=null&&(r=e.vmax),r===n&&(r=n+1),{lo:n,hi:r,clipped:o}}function _(t,e){let n=Float64Array.from(Array.prototype.filter.call(t,r=>Number.isFinite(r))).sort();return n.length?e.map(r=>{let o=r*(n.length-1),a=Math.floor(o),i=Math.min(n.length-1,a+1);return n[a]+(n[i]-n[a])*(o-a)}):e.map(()=>0)}function S(t,e){return`rgb(${t[e*3]}, ${t[e*3+1]}, ${t[e*3+2]})`}var L="·";function P(t){let e=String(t??""),n=/[\n\r]/.test(e),r=/^[ \t]/.test(e),o=e.replace(/^[ \t]+/,"").replace(/\r?\n/g,"\\n").replace(/\r/g,"\\r").replace(/\t/g,"\\t");return e===""&&(o="∅"),{space:r,text:o,newline:n}}function N(t){let{space:e,text:n}=P(t);return`${e?L:""}${n}`}function b(t){if(t==null||Number.isNaN(t))return"–";if(!Number.isFinite(t))return t>0?"∞":"−∞";let e=Math.abs(t);return e===0?"0":e>=999.5?Math.round(t).toLocaleString("en-US"):e<.001?t.toExponential(2).replace(/\.?0+e/,"e"):String(Number(t.toPrecision(3)))}function M(t,e){return t.length<=e?t:`${t.slice(0,Math.max(1,e-1))}…`}var F=`
/* Theme: Jupyter variables first, then VS Code, then Colab, then the OS colour scheme. */
.nm-root {
  --nm-fallback-fg: #1f1f1f;
  --nm-fallback-muted: #5f6368;
  --nm-fallback-bg: #ffffff;
  --nm-fallback-panel: #ffffff;
  --nm-fallback-border: #c8c8c8;
  --nm-fallback-accent: #1a73e8;
  --nm-fg: var(--jp-ui-font-color0, var(--vscode-editor-foreground, var(--colab-primary-text-color, var(--nm-fallback-fg))));
  --nm-muted: var(--jp-ui-font-color2, var(--vscode-descriptionForeground, var(--colab-secondary-text-color, var(--nm-fallback-muted))));
  --nm-bg: var(--jp-layout-color0, var(--vscode-editor-background, var(--colab-primary-surface-color, var(--nm-fallback-bg))));
  --nm-panel: var(--jp-layout-color1, var(--vscode-editorWidget-background, var(--colab-primary-surface-color, var(--nm-fallback-panel))));
  --nm-border: var(--jp-border-color2, var(--vscode-panel-border, var(--colab-border-color, var(--nm-fallback-border))));
  --nm-accent: var(--jp-brand-color1, var(--vscode-focusBorder, var(--nm-fallback-accent)));
  position: relative;
  box-sizing: border-box;
  max-width: 100%;
  color: var(--nm-fg);
  font-family: var(--jp-ui-font-family, var(--vscode-font-family, system-ui, -apple-system, "Segoe UI", sans-serif));
  font-size: 12px;
  line-height: 1.35;
}
@media (prefers-color-scheme: dark) {
  .nm-root {
    --nm-fallback-fg: #e8eaed;
    --nm-fallback-muted: #a0a4a8;
    --nm-fallback-bg: #1e1e1e;
    --nm-fallback-panel: #2a2a2a;
    --nm-fallback-border: #4a4a4a;
    --nm-fallback-accent: #8ab4f8;
  }
}
.nm-root *, .nm-root *::before, .nm-root *::after { box-sizing: border-box; }
.nm-toolbar { display: flex; flex-wrap: wrap; align-items: center; gap: 6px 14px; margin-bottom: 6px; }
.nm-title { font-weight: 600; font-size: 13px; }
.nm-toolbar label { display: inline-flex; align-items: center; gap: 4px; color: var(--nm-muted); }
.nm-toolbar select, .nm-toolbar button, .nm-toolbar input {
  font: inherit; color: var(--nm-fg); background: var(--nm-panel);
  border: 1px solid var(--nm-border); border-radius: 3px; padding: 1px 4px;
}
.nm-toolbar input[type="number"] { width: 4.5em; }
.nm-readout { color: var(--nm-muted); font-variant-numeric: tabular-nums; }
.nm-body { display: flex; align-items: flex-start; max-width: 100%; }
.nm-scroll { position: relative; overflow-x: auto; overflow-y: hidden; flex: 1 1 auto; min-width: 0; }
.nm-stack { position: relative; }
.nm-stack canvas, .nm-body canvas { display: block; }
.nm-overlay { position: absolute; left: 0; top: 0; cursor: crosshair; outline: none; }
.nm-overlay:focus-visible { box-shadow: 0 0 0 2px var(--nm-accent); }
.nm-axis-title { text-align: center; color: var(--nm-muted); margin-top: 2px; }
.nm-legend { display: flex; flex-wrap: wrap; align-items: center; gap: 4px 10px; margin-top: 6px; color: var(--nm-muted); }
.nm-colorbar { display: inline-flex; align-items: center; gap: 6px; font-variant-numeric: tabular-nums; }
.nm-colorbar canvas { width: 160px; height: 10px; border: 1px solid var(--nm-border); }
.nm-mark-key { display: inline-flex; align-items: center; gap: 4px; }
.nm-mark-key b.nm-corner { display: inline-block; width: 0; height: 0; border-top: 9px solid #ff3d7f; border-left: 9px solid transparent; }
.nm-mark-key i { display: inline-block; width: 10px; height: 10px; border: 2px solid var(--nm-fg); }
.nm-tooltip {
  position: absolute; z-index: 10; pointer-events: none; display: none; max-width: 320px;
  padding: 5px 8px; border: 1px solid var(--nm-border); border-radius: 4px;
  background: var(--nm-panel); color: var(--nm-fg); box-shadow: 0 2px 8px rgba(0, 0, 0, 0.25);
  font-variant-numeric: tabular-nums; white-space: nowrap;
}
.nm-tooltip .nm-tip-title { font-weight: 600; margin-bottom: 2px; white-space: normal; overflow-wrap: anywhere; }
.nm-tooltip table { border-collapse: collapse; }
.nm-tooltip td { padding: 0 6px 0 0; }
.nm-tooltip td.nm-num { text-align: right; }
.nm-token { font-family: var(--jp-code-font-family, var(--vscode-editor-font-family, ui-monospace, Menlo, Consolas, monospace)); }
.nm-space { opacity: 0.45; }
.nm-running { white-space: pre-wrap; }
.nm-attn-layout { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
.nm-attn-grid { max-height: 460px; overflow: auto; border: 1px solid var(--nm-border); border-radius: 3px; position: relative; }
.nm-attn-zoom { min-width: 200px; }
.nm-attn-zoom-title { font-weight: 600; margin-bottom: 4px; }
.nm-empty { color: var(--nm-muted); padding: 8px 0; }
`;function s(t,e={},n=[]){let r=document.createElement(t);for(let[o,a]of Object.entries(e))o==="className"?r.className=a:o==="text"?r.textContent=a:o==="style"?Object.assign(r.style,a):r.setAttribute(o,a);for(let o of n)r.append(o);return r}function z(t,e){let n=s("div",{className:`nm-root nm-${e}`});return n.append(s("style",{text:F})),t.append(n),n}function K(t,e=800){return t.clientWidth||t.parentElement?.clientWidth||e}function D(t){let e=globalThis.matchMedia?.("(prefers-color-scheme: dark)");e?.addEventListener?.("change",t);let n=typeof MutationObserver>"u"?null:new MutationObserver(t);return n?.observe(document.body,{attributes:!0,attributeFilter:["class","data-jp-theme-name","data-jp-theme-light","style"]}),()=>{e?.removeEventListener?.("change",t),n?.disconnect()}}function I(t,e){let n=s("a",{href:t,download:e});document.body.append(n),n.click(),n.remove()}function X(t){return new Promise((e,n)=>{let r=new Image;r.onload=()=>{let o=document.createElement("canvas");o.width=r.width*2,o.height=r.height*2;let a=o.getContext("2d");a.scale(2,2),a.drawImage(r,0,0),e(o.toDataURL("image/png"))},r.onerror=()=>n(new Error("the SVG could not be rasterised")),r.src=`data:image/svg+xml;charset=utf-8,${encodeURIComponent(t)}`})}var J=["--nm-fg","--nm-muted","--nm-bg","--nm-panel","--nm-border","--nm-accent"];function j(t){let e=Math.ceil(t.scrollWidth||t.clientWidth||K(t)),n=Math.ceil(t.scrollHeight||t.clientHeight||400),r=t.cloneNode(!0),o=t.querySelectorAll("canvas");r.querySelectorAll("canvas").forEach((c,p)=>{let l=o[p],m="";try{m=l.toDataURL("image/png")||""}catch{m=""}c.replaceWith(s("img",{src:m,width:l.style.width||l.width,height:l.style.height||l.height}))}),r.querySelectorAll("button, input, select, .nm-tooltip, .nm-export").forEach(c=>c.remove());let a=getComputedStyle(t),i=J.map(c=>[c,a.getPropertyValue(c).trim()]).filter(([,c])=>c&&!c.startsWith("var("));r.setAttribute("style",`${r.getAttribute("style")||""};${i.map(([c,p])=>`${c}: ${p}`).join("; ")}; background: var(--nm-bg, #fff); padding: 6px;`);let f=new XMLSerializer().serializeToString(r);return`<svg xmlns="http://www.w3.org/2000/svg" width="${e+12}" height="${n+12}"><foreignObject x="0" y="0" width="100%" height="100%">${f}</foreignObject></svg>`}function O(t,e){let n=s("button",{type:"button",text:"SVG",className:"nm-export-svg",title:"download this view as SVG"}),r=s("button",{type:"button",text:"PNG",className:"nm-export-png",title:"download this view as PNG"});return n.addEventListener("click",()=>I(`data:image/svg+xml;charset=utf-8,${encodeURIComponent(j(t))}`,`${e()}.svg`)),r.addEventListener("click",async()=>I(await X(j(t)),`${e()}.png`)),s("div",{className:"nm-export nm-toolbar"},[n,r])}var Q=90,Z=`
.nm-diff-stats { border-collapse: collapse; margin: 2px 0 6px; font-variant-numeric: tabular-nums; }
.nm-diff-stats th, .nm-diff-stats td { padding: 1px 10px 1px 0; text-align: left; }
.nm-diff-stats td.nm-num { text-align: right; max-width: 260px; overflow-wrap: anywhere; }
.nm-diff-card { border: 1px solid var(--nm-border); border-radius: 4px; padding: 5px 8px; margin: 6px 0; cursor: pointer; background: var(--nm-bg); }
.nm-diff-card:focus-visible { outline: 2px solid var(--nm-accent); outline-offset: 1px; }
.nm-diff-selected { border-color: var(--nm-accent); box-shadow: 0 0 0 1px var(--nm-accent); }
.nm-diff-prompt { color: var(--nm-muted); margin-bottom: 3px; display: flex; gap: 6px; }
.nm-diff-marker { font-weight: 700; color: var(--nm-fg); }
.nm-diff-changed .nm-diff-marker { color: var(--nm-accent); }
.nm-diff-columns { display: grid; grid-template-columns: repeat(auto-fit, minmax(240px, 1fr)); gap: 4px 14px; }
.nm-diff-column { min-width: 0; }
.nm-diff-side-label { color: var(--nm-muted); font-size: 11px; }
.nm-diff-text { white-space: pre-wrap; overflow-wrap: anywhere; line-height: 1.6;
  font-family: var(--jp-code-font-family, var(--vscode-editor-font-family, ui-monospace, Menlo, Consolas, monospace)); }
.nm-diff-token { border-radius: 2px; }
.nm-diff-diverged { text-decoration: underline dotted var(--nm-accent); text-underline-offset: 3px; }
.nm-diff-first { box-shadow: inset 3px 0 0 var(--nm-accent); padding-left: 4px; }
.nm-diff-end { color: var(--nm-muted); }
.nm-diff-pending { color: var(--nm-muted); }
.nm-diff-topk table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
.nm-diff-topk td { padding: 0 8px 0 0; white-space: pre; }
.nm-diff-topk td.nm-num { text-align: right; }
.nm-diff-bar { display: inline-block; height: 8px; background: var(--nm-accent); border-radius: 1px; vertical-align: middle; }
.nm-diff-swatch { padding: 0 6px; border-radius: 2px; font-variant-numeric: tabular-nums; }
.nm-diff-zero { border: 1px solid var(--nm-border); }
`;function tt(t){let e=k(t.get("logprob_before")),n=k(t.get("logprob_after")),r=k(t.get("topk_probs")),o=e.shape[1],a=new Float32Array(e.data.length);for(let i=0;i<a.length;i++)a[i]=n.data[i]-e.data[i];return{title:t.get("title")||"",labels:t.get("labels")||["before","after"],prompts:t.get("prompts")||[],pieces:[t.get("pieces_before")||[],t.get("pieces_after")||[]],divergence:t.get("divergence")||[],logprobs:[e,n],change:a,width:o,topk:r,topkPieces:[t.get("topk_pieces_before")||[],t.get("topk_pieces_after")||[]],stats:t.get("stats")||[],pending:t.get("pending")||[],perplexityText:t.get("perplexity_text")||""}}function et(t){if(t.length!==2)return[];let[e,n]=t,r=a=>a===0?"=":`${a>0?"+":""}${b(a)}`,o=a=>a===0?"=":`${a>0?"+":"-"}${Math.abs(a).toLocaleString("en-US")}`;return[["perplexity (lower is better)",b(e.perplexity),b(n.perplexity),r(n.perplexity-e.perplexity)],["depth (blocks run)",String(e.depth),String(n.depth),r(n.depth-e.depth)],["parameters",e.parameters.toLocaleString("en-US"),n.parameters.toLocaleString("en-US"),o(n.parameters-e.parameters)],["program",e.program,n.program,e.program===n.program?"=":"changed"]]}function nt(t,e,n){return t.logprobs.map(r=>r.data[e*t.width+n])}function rt(t,e,n){if(!Number.isFinite(t)||t===0)return null;let r=Math.min(1,Math.abs(t)/e),o=t<0?0:255;return{background:`rgba(${[n[o*3],n[o*3+1],n[o*3+2]].join(", ")}, ${r.toFixed(3)})`,color:r>.55?"#ffffff":""}}function ot(t,e,n,r,o){let a=t.pieces[n][e]||[],i=t.divergence[e]??-1,f=a.map((c,p)=>{let l=s("span",{className:"nm-diff-token",text:c});if(l.dataset.position=String(p),i>=0&&p>=i&&l.classList.add("nm-diff-diverged"),p===i&&l.classList.add("nm-diff-first"),n===0){let[m,d]=nt(t,e,p),g=d-m,u=rt(g,r.hi,o);u&&(l.style.background=u.background,u.color&&(l.style.color=u.color)),l.title=`${N(c)} · log p ${b(m)} → ${b(d)} (Δ ${g>0?"+":""}${b(g)})`}else l.title=N(c);return l});if(n===1&&t.pending.includes(e)){let c=s("span",{className:"nm-diff-token nm-diff-pending",text:"…"});c.title="still generating",f.push(c)}else if(i>=0&&i>=a.length){let c=s("span",{className:"nm-diff-token nm-diff-first nm-diff-end",text:"(end)"});c.title="continuation ends here",f.push(c)}return f}function B(t,e,n){let r=t.topk.shape[2],o=t.topk.shape[1],a=[];for(let i=0;i<r;i++){let f=t.topk.data[(n*o+e)*r+i],c=t.topkPieces[n][e]?.[i]??"",p=s("span",{className:"nm-diff-bar",style:{width:`${Math.round(Math.max(0,Math.min(1,f))*60)}px`}});a.push(s("tr",{},[s("td",{className:"nm-token",text:N(c)}),s("td",{className:"nm-num",text:`${b(100*f)}%`}),s("td",{},[p])]))}return s("div",{className:"nm-diff-topk"},[s("div",{className:"nm-diff-side-label",text:`${t.labels[n]}: next token`}),s("table",{},a)])}function at(t,e){let[n,r]=t.logprobs,o=0,a=0;for(let c=0;c<t.width;c++){let p=r.data[e*t.width+c]-n.data[e*t.width+c];Number.isFinite(p)&&(o+=p,a+=1)}let i=t.divergence[e]??-1;return`${i<0?"identical continuations":`part at token ${i}`} · Σ Δ log p of the ${t.labels[0]} continuation ${o>0?"+":""}${b(o)} over ${a} tokens`}function it(t){let e=t.trim().split(/\s+/).length,n=s("div",{className:"nm-readout nm-diff-ppl-text",text:`perplexity measured on a built-in text of ${e} words: “${M(t.replace(/\s+/g," ").trim(),70)}”`});return n.title=t,n}function st({model:t,el:e}){let n=z(e,"diff");n.append(s("style",{text:Z}));let r=s("div");n.append(O(n,()=>"diff"),r);let o=null;function a(l,m,d){let g=t.get("selected")===l,u=o.divergence[l]??-1,h=s("div",{className:`nm-diff-card${g?" nm-diff-selected":""}${u>=0?" nm-diff-changed":""}`,tabindex:"0",role:"button","aria-expanded":String(g)});h.dataset.row=String(l);let w=[0,1].map(x=>s("div",{className:"nm-diff-column"},[s("div",{className:"nm-diff-side-label",text:o.labels[x]}),s("div",{className:"nm-diff-text"},ot(o,l,x,m,d))]));h.append(s("div",{className:"nm-diff-prompt"},[s("span",{className:"nm-diff-marker",text:u>=0?"≠":"="}),s("span",{className:"nm-token",text:M(o.prompts[l].replace(/\s+/g," "),Q)})]),s("div",{className:"nm-diff-columns"},w)),g&&h.append(s("div",{className:"nm-readout",text:at(o,l)}),s("div",{className:"nm-diff-columns"},[B(o,l,0),B(o,l,1)]));let T=()=>{t.set("selected",t.get("selected")===l?-1:l),t.save_changes()};return h.addEventListener("click",T),h.addEventListener("keydown",x=>{(x.key==="Enter"||x.key===" ")&&(x.preventDefault(),T())}),h}function i(){if(r.replaceChildren(),!o.prompts.length){r.append(s("div",{className:"nm-empty",text:"No prompts to compare."}));return}let l=C("diverging"),m=R(o.change,{scale:"diverging",center:0}),d=o.divergence.filter(u=>u>=0).length,g=et(o.stats).map(u=>s("tr",{},u.map((h,w)=>s(w?"td":"th",{className:w?"nm-num":"",text:h}))));r.append(s("div",{className:"nm-toolbar"},[s("span",{className:"nm-title",text:o.title}),s("span",{className:"nm-readout",text:`${d} of ${o.prompts.length} continuations changed`+(o.pending.length?` · generating ${o.pending.length} more…`:"")})]),s("table",{className:"nm-diff-stats"},[s("tr",{},["",o.labels[0],o.labels[1],"change"].map(u=>s("th",{text:u}))),...g]),...o.perplexityText?[it(o.perplexityText)]:[],s("div",{className:"nm-legend"},[s("span",{text:`${o.labels[0]} tokens shaded by Δ log p:`}),s("span",{className:"nm-diff-swatch",text:b(m.lo),style:{background:S(l,0),color:"#fff"}}),s("span",{className:"nm-diff-swatch nm-diff-zero",text:"0"}),s("span",{className:"nm-diff-swatch",text:`+${b(m.hi)}`,style:{background:S(l,255),color:"#fff"}}),s("span",{className:"nm-diff-token nm-diff-first",text:"first divergence"})]),...o.prompts.map((u,h)=>a(h,m,l)))}function f(){o=tt(t),i()}let c=["logprob_before","logprob_after","topk_probs","pieces_before","pieces_after","divergence","prompts","labels","stats","title","topk_pieces_before","topk_pieces_after","pending","perplexity_text"];for(let l of c)t.on(`change:${l}`,f);t.on("change:selected",i);let p=D(()=>i());return f(),()=>{for(let l of c)t.off(`change:${l}`,f);t.off("change:selected",i),p()}}var yt={render:st};export{rt as changeShade,yt as default,it as perplexityNote,tt as readDiff,et as statRows};
