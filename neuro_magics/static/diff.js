var D={float32:Float32Array,int32:Int32Array,uint8:Uint8Array,float16:Uint16Array},y=null;function O(){if(y)return y;y=new Float32Array(65536);for(let e=0;e<65536;e++)y[e]=B(e);return y}function B(e){let t=e&32768?-1:1,n=e>>10&31,r=e&1023;return n===0?t*2**-14*(r/1024):n===31?r?NaN:t*(1/0):t*2**(n-15)*(1+r/1024)}function U(e){if(e instanceof DataView||ArrayBuffer.isView(e))return{buffer:e.buffer,byteOffset:e.byteOffset,byteLength:e.byteLength};if(e instanceof ArrayBuffer)return{buffer:e,byteOffset:0,byteLength:e.byteLength};throw new TypeError("binary array expected a DataView, TypedArray or ArrayBuffer as 'view'")}function w(e){if(e==null)return null;let{dtype:t,shape:n}=e,r=D[t];if(!r)throw new TypeError(`unsupported dtype ${t}`);let{buffer:o,byteOffset:a,byteLength:i}=U(e.view),f=n.reduce((d,g)=>d*g,1);if(f*r.BYTES_PER_ELEMENT!==i)throw new RangeError(`${t} array of shape [${n}] needs ${f*r.BYTES_PER_ELEMENT} bytes, got ${i}`);let p=a%r.BYTES_PER_ELEMENT===0?new r(o,a,f):new r(o.slice(a,a+i));if(t!=="float16")return{data:p,shape:[...n],dtype:t};let c=O(),m=new Float32Array(f);for(let d=0;d<f;d++)m[d]=c[p[d]];return{data:m,shape:[...n],dtype:t}}var E={sequential:["#440154","#482878","#3e4989","#31688e","#26828e","#1f9e89","#35b779","#6ece58","#b5de2b","#fde725"],diverging:["#2166ac","#4393c3","#92c5de","#d1e5f0","#f7f7f7","#fddbc7","#f4a582","#d6604d","#b2182b"],magnitude:["#fff7ec","#fee8c8","#fdd49e","#fdbb84","#fc8d59","#ef6548","#d7301f","#b30000","#7f0000"],categorical:["#4e79a7","#f28e2b","#e15759","#76b7b2","#59a14f","#edc948","#b07aa1","#ff9da7","#9c755f","#17becf","#bcbd22","#1f3b73"]},$=new Map;function v(e){let t=parseInt(e.slice(1),16);return[t>>16&255,t>>8&255,t&255]}function V(e){let t=String(e||"").trim(),n=/^#([0-9a-f]{3})$/i.exec(t);return n?[...n[1]].map(r=>parseInt(r+r,16)):(n=/^#([0-9a-f]{6})$/i.exec(t),n?v(t):(n=/^rgba?\(\s*(\d+)[,\s]+(\d+)[,\s]+(\d+)/i.exec(t),n?n.slice(1,4).map(Number):null))}function q([e,t,n]){return .2126*e+.7152*t+.0722*n<128}var A=[["#92c5de","#4393c3","#2b5f8a"],["#9e3a2e","#d6604d","#f4a582"]],W=["#5a1f0a","#a63603","#e6550d","#fd8d3c","#fdbe85"];function C(e,t=null){let n=e in E?e:"sequential",r=n==="diverging"||n==="magnitude"?V(t):null,o=r&&q(r),a=o?`${n}:${r.join(",")}`:n;if($.has(a))return $.get(a);let i=E[n].map(v);o&&n==="diverging"&&(i=[...A[0].map(v),r,...A[1].map(v)]),o&&n==="magnitude"&&(i=[r,...W.map(v)]);let f=new Uint8ClampedArray(256*3);for(let l=0;l<256;l++){let p=l/255*(i.length-1),c=Math.min(Math.floor(p),i.length-2),m=p-c;for(let d=0;d<3;d++)f[l*3+d]=Math.round(i[c][d]*(1-m)+i[c+1][d]*m)}return $.set(a,f),f}function R(e,t){let n=1/0,r=-1/0;for(let a=0;a<e.length;a++){let i=e[a];i<n&&(n=i),i>r&&(r=i)}n===1/0&&(n=r=0);let o=!1;if(t.clip!=null&&t.scale!=="diverging"){let[a,i]=_(e,[1-t.clip,t.clip]);o=a>n||i<r,n=a,r=i}if(t.scale==="diverging"){let a=t.center??0,i=Math.max(Math.abs(n-a),Math.abs(r-a))||1;if(t.clip!=null){let f=Float64Array.from(e,p=>Math.abs(p-a)),l=_(f,[t.clip])[0];l>0&&l<i&&(i=l,o=!0)}n=a-i,r=a+i}return t.vmin!=null&&(n=t.vmin),t.vmax!=null&&(r=t.vmax),r===n&&(r=n+1),{lo:n,hi:r,clipped:o}}function _(e,t){let n=Float64Array.from(Array.prototype.filter.call(e,r=>Number.isFinite(r))).sort();return n.length?t.map(r=>{let o=r*(n.length-1),a=Math.floor(o),i=Math.min(n.length-1,a+1);return n[a]+(n[i]-n[a])*(o-a)}):t.map(()=>0)}function S(e,t){return`rgb(${e[t*3]}, ${e[t*3+1]}, ${e[t*3+2]})`}var F="·";function L(e){let t=String(e??""),n=/[\n\r]/.test(t),r=/^[ \t]/.test(t),o=t.replace(/^[ \t]+/,"").replace(/\r?\n/g,"\\n").replace(/\r/g,"\\r").replace(/\t/g,"\\t");return t===""&&(o="∅"),{space:r,text:o,newline:n}}function N(e){let{space:t,text:n}=L(e);return`${t?F:""}${n}`}function b(e){if(e==null||Number.isNaN(e))return"–";if(!Number.isFinite(e))return e>0?"∞":"−∞";let t=Math.abs(e);return t===0?"0":t>=999.5?Math.round(e).toLocaleString("en-US"):t<.001?e.toExponential(2).replace(/\.?0+e/,"e"):String(Number(e.toPrecision(3)))}function M(e,t){return e.length<=t?e:`${e.slice(0,Math.max(1,t-1))}…`}var P=`
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
`;function s(e,t={},n=[]){let r=document.createElement(e);for(let[o,a]of Object.entries(t))o==="className"?r.className=a:o==="text"?r.textContent=a:o==="style"?Object.assign(r.style,a):r.setAttribute(o,a);for(let o of n)r.append(o);return r}function I(e,t){let n=s("div",{className:`nm-root nm-${t}`});return n.append(s("style",{text:P})),e.append(n),n}function j(e){let t=globalThis.matchMedia?.("(prefers-color-scheme: dark)");t?.addEventListener?.("change",e);let n=typeof MutationObserver>"u"?null:new MutationObserver(e);return n?.observe(document.body,{attributes:!0,attributeFilter:["class","data-jp-theme-name","data-jp-theme-light","style"]}),()=>{t?.removeEventListener?.("change",e),n?.disconnect()}}var Y=90,K=`
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
`;function G(e){let t=w(e.get("logprob_before")),n=w(e.get("logprob_after")),r=w(e.get("topk_probs")),o=t.shape[1],a=new Float32Array(t.data.length);for(let i=0;i<a.length;i++)a[i]=n.data[i]-t.data[i];return{title:e.get("title")||"",labels:e.get("labels")||["before","after"],prompts:e.get("prompts")||[],pieces:[e.get("pieces_before")||[],e.get("pieces_after")||[]],divergence:e.get("divergence")||[],logprobs:[t,n],change:a,width:o,topk:r,topkPieces:[e.get("topk_pieces_before")||[],e.get("topk_pieces_after")||[]],stats:e.get("stats")||[],pending:e.get("pending")||[],perplexityText:e.get("perplexity_text")||""}}function X(e){if(e.length!==2)return[];let[t,n]=e,r=a=>a===0?"=":`${a>0?"+":""}${b(a)}`,o=a=>a===0?"=":`${a>0?"+":"-"}${Math.abs(a).toLocaleString("en-US")}`;return[["perplexity (lower is better)",b(t.perplexity),b(n.perplexity),r(n.perplexity-t.perplexity)],["depth (blocks run)",String(t.depth),String(n.depth),r(n.depth-t.depth)],["parameters",t.parameters.toLocaleString("en-US"),n.parameters.toLocaleString("en-US"),o(n.parameters-t.parameters)],["program",t.program,n.program,t.program===n.program?"=":"changed"]]}function H(e,t,n){return e.logprobs.map(r=>r.data[t*e.width+n])}function J(e,t,n){if(!Number.isFinite(e)||e===0)return null;let r=Math.min(1,Math.abs(e)/t),o=e<0?0:255;return{background:`rgba(${[n[o*3],n[o*3+1],n[o*3+2]].join(", ")}, ${r.toFixed(3)})`,color:r>.55?"#ffffff":""}}function Q(e,t,n,r,o){let a=e.pieces[n][t]||[],i=e.divergence[t]??-1,f=a.map((l,p)=>{let c=s("span",{className:"nm-diff-token",text:l});if(c.dataset.position=String(p),i>=0&&p>=i&&c.classList.add("nm-diff-diverged"),p===i&&c.classList.add("nm-diff-first"),n===0){let[m,d]=H(e,t,p),g=d-m,u=J(g,r.hi,o);u&&(c.style.background=u.background,u.color&&(c.style.color=u.color)),c.title=`${N(l)} · log p ${b(m)} → ${b(d)} (Δ ${g>0?"+":""}${b(g)})`}else c.title=N(l);return c});if(n===1&&e.pending.includes(t)){let l=s("span",{className:"nm-diff-token nm-diff-pending",text:"…"});l.title="still generating",f.push(l)}else if(i>=0&&i>=a.length){let l=s("span",{className:"nm-diff-token nm-diff-first nm-diff-end",text:"(end)"});l.title="continuation ends here",f.push(l)}return f}function z(e,t,n){let r=e.topk.shape[2],o=e.topk.shape[1],a=[];for(let i=0;i<r;i++){let f=e.topk.data[(n*o+t)*r+i],l=e.topkPieces[n][t]?.[i]??"",p=s("span",{className:"nm-diff-bar",style:{width:`${Math.round(Math.max(0,Math.min(1,f))*60)}px`}});a.push(s("tr",{},[s("td",{className:"nm-token",text:N(l)}),s("td",{className:"nm-num",text:`${b(100*f)}%`}),s("td",{},[p])]))}return s("div",{className:"nm-diff-topk"},[s("div",{className:"nm-diff-side-label",text:`${e.labels[n]}: next token`}),s("table",{},a)])}function Z(e,t){let[n,r]=e.logprobs,o=0,a=0;for(let l=0;l<e.width;l++){let p=r.data[t*e.width+l]-n.data[t*e.width+l];Number.isFinite(p)&&(o+=p,a+=1)}let i=e.divergence[t]??-1;return`${i<0?"identical continuations":`part at token ${i}`} · Σ Δ log p of the ${e.labels[0]} continuation ${o>0?"+":""}${b(o)} over ${a} tokens`}function ee(e){let t=e.trim().split(/\s+/).length,n=s("div",{className:"nm-readout nm-diff-ppl-text",text:`perplexity measured on a built-in text of ${t} words: “${M(e.replace(/\s+/g," ").trim(),70)}”`});return n.title=e,n}function te({model:e,el:t}){let n=I(t,"diff");n.append(s("style",{text:K}));let r=s("div");n.append(r);let o=null;function a(c,m,d){let g=e.get("selected")===c,u=o.divergence[c]??-1,h=s("div",{className:`nm-diff-card${g?" nm-diff-selected":""}${u>=0?" nm-diff-changed":""}`,tabindex:"0",role:"button","aria-expanded":String(g)});h.dataset.row=String(c);let k=[0,1].map(x=>s("div",{className:"nm-diff-column"},[s("div",{className:"nm-diff-side-label",text:o.labels[x]}),s("div",{className:"nm-diff-text"},Q(o,c,x,m,d))]));h.append(s("div",{className:"nm-diff-prompt"},[s("span",{className:"nm-diff-marker",text:u>=0?"≠":"="}),s("span",{className:"nm-token",text:M(o.prompts[c].replace(/\s+/g," "),Y)})]),s("div",{className:"nm-diff-columns"},k)),g&&h.append(s("div",{className:"nm-readout",text:Z(o,c)}),s("div",{className:"nm-diff-columns"},[z(o,c,0),z(o,c,1)]));let T=()=>{e.set("selected",e.get("selected")===c?-1:c),e.save_changes()};return h.addEventListener("click",T),h.addEventListener("keydown",x=>{(x.key==="Enter"||x.key===" ")&&(x.preventDefault(),T())}),h}function i(){if(r.replaceChildren(),!o.prompts.length){r.append(s("div",{className:"nm-empty",text:"No prompts to compare."}));return}let c=C("diverging"),m=R(o.change,{scale:"diverging",center:0}),d=o.divergence.filter(u=>u>=0).length,g=X(o.stats).map(u=>s("tr",{},u.map((h,k)=>s(k?"td":"th",{className:k?"nm-num":"",text:h}))));r.append(s("div",{className:"nm-toolbar"},[s("span",{className:"nm-title",text:o.title}),s("span",{className:"nm-readout",text:`${d} of ${o.prompts.length} continuations changed`+(o.pending.length?` · generating ${o.pending.length} more…`:"")})]),s("table",{className:"nm-diff-stats"},[s("tr",{},["",o.labels[0],o.labels[1],"change"].map(u=>s("th",{text:u}))),...g]),...o.perplexityText?[ee(o.perplexityText)]:[],s("div",{className:"nm-legend"},[s("span",{text:`${o.labels[0]} tokens shaded by Δ log p:`}),s("span",{className:"nm-diff-swatch",text:b(m.lo),style:{background:S(c,0),color:"#fff"}}),s("span",{className:"nm-diff-swatch nm-diff-zero",text:"0"}),s("span",{className:"nm-diff-swatch",text:`+${b(m.hi)}`,style:{background:S(c,255),color:"#fff"}}),s("span",{className:"nm-diff-token nm-diff-first",text:"first divergence"})]),...o.prompts.map((u,h)=>a(h,m,c)))}function f(){o=G(e),i()}let l=["logprob_before","logprob_after","topk_probs","pieces_before","pieces_after","divergence","prompts","labels","stats","title","topk_pieces_before","topk_pieces_after","pending","perplexity_text"];for(let c of l)e.on(`change:${c}`,f);e.on("change:selected",i);let p=j(()=>i());return f(),()=>{for(let c of l)e.off(`change:${c}`,f);e.off("change:selected",i),p()}}var me={render:te};export{J as changeShade,me as default,ee as perplexityNote,G as readDiff,X as statRows};
