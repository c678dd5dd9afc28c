var P={float32:Float32Array,int32:Int32Array,uint8:Uint8Array,float16:Uint16Array},y=null;function I(){if(y)return y;y=new Float32Array(65536);for(let t=0;t<65536;t++)y[t]=j(t);return y}function j(t){let e=t&32768?-1:1,n=t>>10&31,r=t&1023;return n===0?e*2**-14*(r/1024):n===31?r?NaN:e*(1/0):e*2**(n-15)*(1+r/1024)}function z(t){if(t instanceof DataView||ArrayBuffer.isView(t))return{buffer:t.buffer,byteOffset:t.byteOffset,byteLength:t.byteLength};if(t instanceof ArrayBuffer)return{buffer:t,byteOffset:0,byteLength:t.byteLength};throw new TypeError("binary array expected a DataView, TypedArray or ArrayBuffer as 'view'")}function k(t){if(t==null)return null;let{dtype:e,shape:n}=t,r=P[e];if(!r)throw new TypeError(`unsupported dtype ${e}`);let{buffer:o,byteOffset:i,byteLength:a}=z(t.view),f=n.reduce((m,g)=>m*g,1);if(f*r.BYTES_PER_ELEMENT!==a)throw new RangeError(`${e} array of shape [${n}] needs ${f*r.BYTES_PER_ELEMENT} bytes, got ${a}`);let p=i%r.BYTES_PER_ELEMENT===0?new r(o,i,f):new r(o.slice(i,i+a));if(e!=="float16")return{data:p,shape:[...n],dtype:e};let l=I(),u=new Float32Array(f);for(let m=0;m<f;m++)u[m]=l[p[m]];return{data:u,shape:[...n],dtype:e}}var S={sequential:["#440154","#482878","#3e4989","#31688e","#26828e","#1f9e89","#35b779","#6ece58","#b5de2b","#fde725"],diverging:["#2166ac","#4393c3","#92c5de","#d1e5f0","#f7f7f7","#fddbc7","#f4a582","#d6604d","#b2182b"]},N=new Map;function O(t){let e=parseInt(t.slice(1),16);return[e>>16&255,e>>8&255,e&255]}function E(t){let e=t in S?t:"sequential";if(N.has(e))return N.get(e);let n=S[e].map(O),r=new Uint8ClampedArray(256*3);for(let o=0;o<256;o++){let i=o/255*(n.length-1),a=Math.min(Math.floor(i),n.length-2),f=i-a;for(let c=0;c<3;c++)r[o*3+c]=Math.round(n[a][c]*(1-f)+n[a+1][c]*f)}return N.set(e,r),r}function _(t,e){let n=1/0,r=-1/0;for(let i=0;i<t.length;i++){let a=t[i];a<n&&(n=a),a>r&&(r=a)}n===1/0&&(n=r=0);let o=!1;if(e.clip!=null&&e.scale!=="diverging"){let[i,a]=T(t,[1-e.clip,e.clip]);o=i>n||a<r,n=i,r=a}if(e.scale==="diverging"){let i=e.center??0,a=Math.max(Math.abs(n-i),Math.abs(r-i))||1;if(e.clip!=null){let f=Float64Array.from(t,p=>Math.abs(p-i)),c=T(f,[e.clip])[0];c>0&&c<a&&(a=c,o=!0)}n=i-a,r=i+a}return e.vmin!=null&&(n=e.vmin),e.vmax!=null&&(r=e.vmax),r===n&&(r=n+1),{lo:n,hi:r,clipped:o}}function T(t,e){let n=Float64Array.from(Array.prototype.filter.call(t,r=>Number.isFinite(r))).sort();return n.length?e.map(r=>{let o=r*(n.length-1),i=Math.floor(o),a=Math.min(n.length-1,i+1);return n[i]+(n[a]-n[i])*(o-i)}):e.map(()=>0)}function M(t,e){return`rgb(${t[e*3]}, ${t[e*3+1]}, ${t[e*3+2]})`}var A=`
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
.nm-mark-key i { display: inline-block; width: 10px; height: 10px; border: 2px solid var(--nm-fg); }
.nm-tooltip {
  position: absolute; z-index: 10; pointer-events: none; display: none; max-width: 320px;
  padding: 5px 8px; border: 1px solid var(--nm-border); border-radius: 4px;
  background: var(--nm-panel); color: var(--nm-fg); box-shadow: 0 2px 8px rgba(0, 0, 0, 0.25);
  font-variant-numeric: tabular-nums; white-space: nowrap;
}
.nm-tooltip .nm-tip-title { font-weight: 600; margin-bottom: 2px; }
.nm-tooltip table { border-collapse: collapse; }
.nm-tooltip td { padding: 0 6px 0 0; }
.nm-tooltip td.nm-num { text-align: right; }
.nm-token { font-family: var(--jp-code-font-family, var(--vscode-editor-font-family, ui-monospace, Menlo, Consolas, monospace)); }
.nm-attn-layout { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
.nm-attn-grid { max-height: 460px; overflow: auto; border: 1px solid var(--nm-border); border-radius: 3px; position: relative; }
.nm-attn-zoom { min-width: 200px; }
.nm-attn-zoom-title { font-weight: 600; margin-bottom: 4px; }
.nm-empty { color: var(--nm-muted); padding: 8px 0; }
`;function s(t,e={},n=[]){let r=document.createElement(t);for(let[o,i]of Object.entries(e))o==="className"?r.className=i:o==="text"?r.textContent=i:o==="style"?Object.assign(r.style,i):r.setAttribute(o,i);for(let o of n)r.append(o);return r}function F(t,e){let n=s("div",{className:`nm-root nm-${e}`});return n.append(s("style",{text:A})),t.append(n),n}function R(t){let e=globalThis.matchMedia?.("(prefers-color-scheme: dark)");e?.addEventListener?.("change",t);let n=typeof MutationObserver>"u"?null:new MutationObserver(t);return n?.observe(document.body,{attributes:!0,attributeFilter:["class","data-jp-theme-name","data-jp-theme-light","style"]}),()=>{e?.removeEventListener?.("change",t),n?.disconnect()}}var B=/^(\+)?(?:\.(\d+))?([fegd%])?$/;function b(t,e=""){if(t==null||Number.isNaN(t))return"–";if(!Number.isFinite(t))return t>0?"∞":"−∞";let n=B.exec(e||"");if(!n)return String(t);let[,r,o,i="g"]=n,a=o===void 0?null:Number(o),f;switch(i){case"f":f=t.toFixed(a??6);break;case"e":f=t.toExponential(a??6).replace(/e([+-])(\d)$/,"e$10$2");break;case"%":f=`${(t*100).toFixed(a??6)}%`;break;case"d":f=Math.round(t).toString();break;default:f=String(Number(t.toPrecision(Math.max(1,a??4))))}return r&&t>=0?`+${f}`:f}var D={" ":"␣","\n":"↵","	":"⇥","\r":"␍"};function w(t){return t===""?"∅":String(t).replace(/[ \n\t\r]/g,e=>D[e])}function C(t,e){return t.length<=e?t:`${t.slice(0,Math.max(1,e-1))}…`}var q=90,U=`
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
.nm-diff-topk table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
.nm-diff-topk td { padding: 0 8px 0 0; white-space: pre; }
.nm-diff-topk td.nm-num { text-align: right; }
.nm-diff-bar { display: inline-block; height: 8px; background: var(--nm-accent); border-radius: 1px; vertical-align: middle; }
.nm-diff-swatch { padding: 0 6px; border-radius: 2px; font-variant-numeric: tabular-nums; }
.nm-diff-zero { border: 1px solid var(--nm-border); }
`;function V(t){let e=k(t.get("logprob_before")),n=k(t.get("logprob_after")),r=k(t.get("topk_probs")),o=e.shape[1],i=new Float32Array(e.data.length);for(let a=0;a<i.length;a++)i[a]=n.data[a]-e.data[a];return{title:t.get("title")||"",labels:t.get("labels")||["before","after"],prompts:t.get("prompts")||[],pieces:[t.get("pieces_before")||[],t.get("pieces_after")||[]],divergence:t.get("divergence")||[],logprobs:[e,n],change:i,width:o,topk:r,topkPieces:[t.get("topk_pieces_before")||[],t.get("topk_pieces_after")||[]],stats:t.get("stats")||[]}}function W(t){if(t.length!==2)return[];let[e,n]=t,r=(o,i)=>o===0?"=":b(o,i);return[["perplexity",b(e.perplexity,".2f"),b(n.perplexity,".2f"),r(n.perplexity-e.perplexity,"+.2f")],["depth (blocks run)",String(e.depth),String(n.depth),r(n.depth-e.depth,"+d")],["parameters",e.parameters.toLocaleString("en-US"),n.parameters.toLocaleString("en-US"),r(n.parameters-e.parameters,"+d")],["program",e.program,n.program,e.program===n.program?"=":"changed"]]}function Y(t,e,n){return t.logprobs.map(r=>r.data[e*t.width+n])}function H(t,e,n){if(!Number.isFinite(t)||t===0)return null;let r=Math.min(1,Math.abs(t)/e),o=t<0?0:255;return{background:`rgba(${[n[o*3],n[o*3+1],n[o*3+2]].join(", ")}, ${r.toFixed(3)})`,color:r>.55?"#ffffff":""}}function X(t,e,n,r,o){let i=t.pieces[n][e]||[],a=t.divergence[e]??-1,f=i.map((c,p)=>{let l=s("span",{className:"nm-diff-token",text:c});if(l.dataset.position=String(p),a>=0&&p>=a&&l.classList.add("nm-diff-diverged"),p===a&&l.classList.add("nm-diff-first"),n===0){let[u,m]=Y(t,e,p),g=m-u,d=H(g,r.hi,o);d&&(l.style.background=d.background,d.color&&(l.style.color=d.color)),l.title=`${w(c)} · log p ${b(u,".3f")} → ${b(m,".3f")} (Δ ${b(g,"+.3f")})`}else l.title=w(c);return l});if(a>=0&&a>=i.length){let c=s("span",{className:"nm-diff-token nm-diff-first nm-diff-end",text:"(end)"});c.title="continuation ends here",f.push(c)}return f}function L(t,e,n){let r=t.topk.shape[2],o=t.topk.shape[1],i=[];for(let a=0;a<r;a++){let f=t.topk.data[(n*o+e)*r+a],c=t.topkPieces[n][e]?.[a]??"",p=s("span",{className:"nm-diff-bar",style:{width:`${Math.round(Math.max(0,Math.min(1,f))*60)}px`}});i.push(s("tr",{},[s("td",{className:"nm-token",text:w(c)}),s("td",{className:"nm-num",text:b(f,".1%")}),s("td",{},[p])]))}return s("div",{className:"nm-diff-topk"},[s("div",{className:"nm-diff-side-label",text:`${t.labels[n]}: next token`}),s("table",{},i)])}function J(t,e){let[n,r]=t.logprobs,o=0,i=0;for(let c=0;c<t.width;c++){let p=r.data[e*t.width+c]-n.data[e*t.width+c];Number.isFinite(p)&&(o+=p,i+=1)}let a=t.divergence[e]??-1;return`${a<0?"identical continuations":`part at token ${a}`} · Σ Δ log p of the ${t.labels[0]} continuation ${b(o,"+.2f")} over ${i} tokens`}function G({model:t,el:e}){let n=F(e,"diff");n.append(s("style",{text:U}));let r=s("div");n.append(r);let o=null;function i(l,u,m){let g=t.get("selected")===l,d=o.divergence[l]??-1,h=s("div",{className:`nm-diff-card${g?" nm-diff-selected":""}${d>=0?" nm-diff-changed":""}`,tabindex:"0",role:"button","aria-expanded":String(g)});h.dataset.row=String(l);let v=[0,1].map(x=>s("div",{className:"nm-diff-column"},[s("div",{className:"nm-diff-side-label",text:o.labels[x]}),s("div",{className:"nm-diff-text"},X(o,l,x,u,m))]));h.append(s("div",{className:"nm-diff-prompt"},[s("span",{className:"nm-diff-marker",text:d>=0?"≠":"="}),s("span",{className:"nm-token",text:C(o.prompts[l].replace(/\s+/g," "),q)})]),s("div",{className:"nm-diff-columns"},v)),g&&h.append(s("div",{className:"nm-readout",text:J(o,l)}),s("div",{className:"nm-diff-columns"},[L(o,l,0),L(o,l,1)]));let $=()=>{t.set("selected",t.get("selected")===l?-1:l),t.save_changes()};return h.addEventListener("click",$),h.addEventListener("keydown",x=>{(x.key==="Enter"||x.key===" ")&&(x.preventDefault(),$())}),h}function a(){if(r.replaceChildren(),!o.prompts.length){r.append(s("div",{className:"nm-empty",text:"No prompts to compare."}));return}let l=E("diverging"),u=_(o.change,{scale:"diverging",center:0}),m=o.divergence.filter(d=>d>=0).length,g=W(o.stats).map(d=>s("tr",{},d.map((h,v)=>s(v?"td":"th",{className:v?"nm-num":"",text:h}))));r.append(s("div",{className:"nm-toolbar"},[s("span",{className:"nm-title",text:o.title}),s("span",{className:"nm-readout",text:`${m} of ${o.prompts.length} continuations changed`})]),s("table",{className:"nm-diff-stats"},[s("tr",{},["",o.labels[0],o.labels[1],"change"].map(d=>s("th",{text:d}))),...g]),s("div",{className:"nm-legend"},[s("span",{text:`${o.labels[0]} tokens shaded by Δ log p:`}),s("span",{className:"nm-diff-swatch",text:b(u.lo,"+.2f"),style:{background:M(l,0),color:"#fff"}}),s("span",{className:"nm-diff-swatch nm-diff-zero",text:"0"}),s("span",{className:"nm-diff-swatch",text:b(u.hi,"+.2f"),style:{background:M(l,255),color:"#fff"}}),s("span",{className:"nm-diff-token nm-diff-first",text:"first divergence"})]),...o.prompts.map((d,h)=>i(h,u,l)))}function f(){o=V(t),a()}let c=["logprob_before","logprob_after","topk_probs","pieces_before","pieces_after","divergence","prompts","labels","stats","title","topk_pieces_before","topk_pieces_after"];for(let l of c)t.on(`change:${l}`,f);t.on("change:selected",a);let p=R(()=>a());return f(),()=>{for(let l of c)t.off(`change:${l}`,f);t.off("change:selected",a),p()}}var st={render:G};export{H as changeShade,st as default,V as readDiff,W as statRows};
