var L={float32:Float32Array,int32:Int32Array,uint8:Uint8Array,float16:Uint16Array},y=null;function P(){if(y)return y;y=new Float32Array(65536);for(let e=0;e<65536;e++)y[e]=I(e);return y}function I(e){let t=e&32768?-1:1,n=e>>10&31,o=e&1023;return n===0?t*2**-14*(o/1024):n===31?o?NaN:t*(1/0):t*2**(n-15)*(1+o/1024)}function j(e){if(e instanceof DataView||ArrayBuffer.isView(e))return{buffer:e.buffer,byteOffset:e.byteOffset,byteLength:e.byteLength};if(e instanceof ArrayBuffer)return{buffer:e,byteOffset:0,byteLength:e.byteLength};throw new TypeError("binary array expected a DataView, TypedArray or ArrayBuffer as 'view'")}function k(e){if(e==null)return null;let{dtype:t,shape:n}=e,o=L[t];if(!o)throw new TypeError(`unsupported dtype ${t}`);let{buffer:r,byteOffset:a,byteLength:s}=j(e.view),c=n.reduce((m,g)=>m*g,1);if(c*o.BYTES_PER_ELEMENT!==s)throw new RangeError(`${t} array of shape [${n}] needs ${c*o.BYTES_PER_ELEMENT} bytes, got ${s}`);let p=a%o.BYTES_PER_ELEMENT===0?new o(r,a,c):new o(r.slice(a,a+s));if(t!=="float16")return{data:p,shape:[...n],dtype:t};let f=P(),u=new Float32Array(c);for(let m=0;m<c;m++)u[m]=f[p[m]];return{data:u,shape:[...n],dtype:t}}var S={sequential:["#440154","#482878","#3e4989","#31688e","#26828e","#1f9e89","#35b779","#6ece58","#b5de2b","#fde725"],diverging:["#2166ac","#4393c3","#92c5de","#d1e5f0","#f7f7f7","#fddbc7","#f4a582","#d6604d","#b2182b"],categorical:["#4e79a7","#f28e2b","#e15759","#76b7b2","#59a14f","#edc948","#b07aa1","#ff9da7","#9c755f","#17becf","#bcbd22","#1f3b73"]},N=new Map;function z(e){let t=parseInt(e.slice(1),16);return[t>>16&255,t>>8&255,t&255]}function T(e){let t=e in S?e:"sequential";if(N.has(t))return N.get(t);let n=S[t].map(z),o=new Uint8ClampedArray(256*3);for(let r=0;r<256;r++){let a=r/255*(n.length-1),s=Math.min(Math.floor(a),n.length-2),c=a-s;for(let l=0;l<3;l++)o[r*3+l]=Math.round(n[s][l]*(1-c)+n[s+1][l]*c)}return N.set(t,o),o}function E(e,t){let n=1/0,o=-1/0;for(let r=0;r<e.length;r++){let a=e[r];a<n&&(n=a),a>o&&(o=a)}if(n===1/0&&(n=o=0),t.scale==="diverging"){let r=t.center??0,a=Math.max(Math.abs(n-r),Math.abs(o-r))||1;n=r-a,o=r+a}return t.vmin!=null&&(n=t.vmin),t.vmax!=null&&(o=t.vmax),o===n&&(o=n+1),{lo:n,hi:o}}function M(e,t){return`rgb(${e[t*3]}, ${e[t*3+1]}, ${e[t*3+2]})`}var _=`
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
`;function i(e,t={},n=[]){let o=document.createElement(e);for(let[r,a]of Object.entries(t))r==="className"?o.className=a:r==="text"?o.textContent=a:r==="style"?Object.assign(o.style,a):o.setAttribute(r,a);for(let r of n)o.append(r);return o}function A(e,t){let n=i("div",{className:`nm-root nm-${t}`});return n.append(i("style",{text:_})),e.append(n),n}function F(e){let t=globalThis.matchMedia?.("(prefers-color-scheme: dark)");t?.addEventListener?.("change",e);let n=typeof MutationObserver>"u"?null:new MutationObserver(e);return n?.observe(document.body,{attributes:!0,attributeFilter:["class","data-jp-theme-name","data-jp-theme-light","style"]}),()=>{t?.removeEventListener?.("change",e),n?.disconnect()}}var O=/^(\+)?(?:\.(\d+))?([fegd%])?$/;function b(e,t=""){if(e==null||Number.isNaN(e))return"–";if(!Number.isFinite(e))return e>0?"∞":"−∞";let n=O.exec(t||"");if(!n)return String(e);let[,o,r,a="g"]=n,s=r===void 0?null:Number(r),c;switch(a){case"f":c=e.toFixed(s??6);break;case"e":c=e.toExponential(s??6).replace(/e([+-])(\d)$/,"e$10$2");break;case"%":c=`${(e*100).toFixed(s??6)}%`;break;case"d":c=Math.round(e).toString();break;default:c=String(Number(e.toPrecision(Math.max(1,s??4))))}return o&&e>=0?`+${c}`:c}var B={" ":"␣","\n":"↵","	":"⇥","\r":"␍"};function w(e){return e===""?"∅":String(e).replace(/[ \n\t\r]/g,t=>B[t])}function C(e,t){return e.length<=t?e:`${e.slice(0,Math.max(1,t-1))}…`}var D=90,U=`
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
`;function V(e){let t=k(e.get("logprob_before")),n=k(e.get("logprob_after")),o=k(e.get("topk_probs")),r=t.shape[1],a=new Float32Array(t.data.length);for(let s=0;s<a.length;s++)a[s]=n.data[s]-t.data[s];return{title:e.get("title")||"",labels:e.get("labels")||["before","after"],prompts:e.get("prompts")||[],pieces:[e.get("pieces_before")||[],e.get("pieces_after")||[]],divergence:e.get("divergence")||[],logprobs:[t,n],change:a,width:r,topk:o,topkPieces:[e.get("topk_pieces_before")||[],e.get("topk_pieces_after")||[]],stats:e.get("stats")||[]}}function W(e){if(e.length!==2)return[];let[t,n]=e,o=(r,a)=>r===0?"=":b(r,a);return[["perplexity",b(t.perplexity,".2f"),b(n.perplexity,".2f"),o(n.perplexity-t.perplexity,"+.2f")],["depth (blocks run)",String(t.depth),String(n.depth),o(n.depth-t.depth,"+d")],["parameters",t.parameters.toLocaleString("en-US"),n.parameters.toLocaleString("en-US"),o(n.parameters-t.parameters,"+d")],["program",t.program,n.program,t.program===n.program?"=":"changed"]]}function Y(e,t,n){return e.logprobs.map(o=>o.data[t*e.width+n])}function q(e,t,n){if(!Number.isFinite(e)||e===0)return null;let o=Math.min(1,Math.abs(e)/t),r=e<0?0:255;return{background:`rgba(${[n[r*3],n[r*3+1],n[r*3+2]].join(", ")}, ${o.toFixed(3)})`,color:o>.55?"#ffffff":""}}function H(e,t,n,o,r){let a=e.pieces[n][t]||[],s=e.divergence[t]??-1,c=a.map((l,p)=>{let f=i("span",{className:"nm-diff-token",text:l});if(f.dataset.position=String(p),s>=0&&p>=s&&f.classList.add("nm-diff-diverged"),p===s&&f.classList.add("nm-diff-first"),n===0){let[u,m]=Y(e,t,p),g=m-u,d=q(g,o.hi,r);d&&(f.style.background=d.background,d.color&&(f.style.color=d.color)),f.title=`${w(l)} · log p ${b(u,".3f")} → ${b(m,".3f")} (Δ ${b(g,"+.3f")})`}else f.title=w(l);return f});if(s>=0&&s>=a.length){let l=i("span",{className:"nm-diff-token nm-diff-first nm-diff-end",text:"(end)"});l.title="continuation ends here",c.push(l)}return c}function R(e,t,n){let o=e.topk.shape[2],r=e.topk.shape[1],a=[];for(let s=0;s<o;s++){let c=e.topk.data[(n*r+t)*o+s],l=e.topkPieces[n][t]?.[s]??"",p=i("span",{className:"nm-diff-bar",style:{width:`${Math.round(Math.max(0,Math.min(1,c))*60)}px`}});a.push(i("tr",{},[i("td",{className:"nm-token",text:w(l)}),i("td",{className:"nm-num",text:b(c,".1%")}),i("td",{},[p])]))}return i("div",{className:"nm-diff-topk"},[i("div",{className:"nm-diff-side-label",text:`${e.labels[n]}: next token`}),i("table",{},a)])}function X(e,t){let[n,o]=e.logprobs,r=0,a=0;for(let l=0;l<e.width;l++){let p=o.data[t*e.width+l]-n.data[t*e.width+l];Number.isFinite(p)&&(r+=p,a+=1)}let s=e.divergence[t]??-1;return`${s<0?"identical continuations":`part at token ${s}`} · Σ Δ log p of the ${e.labels[0]} continuation ${b(r,"+.2f")} over ${a} tokens`}function J({model:e,el:t}){let n=A(t,"diff");n.append(i("style",{text:U}));let o=i("div");n.append(o);let r=null;function a(f,u,m){let g=e.get("selected")===f,d=r.divergence[f]??-1,h=i("div",{className:`nm-diff-card${g?" nm-diff-selected":""}${d>=0?" nm-diff-changed":""}`,tabindex:"0",role:"button","aria-expanded":String(g)});h.dataset.row=String(f);let v=[0,1].map(x=>i("div",{className:"nm-diff-column"},[i("div",{className:"nm-diff-side-label",text:r.labels[x]}),i("div",{className:"nm-diff-text"},H(r,f,x,u,m))]));h.append(i("div",{className:"nm-diff-prompt"},[i("span",{className:"nm-diff-marker",text:d>=0?"≠":"="}),i("span",{className:"nm-token",text:C(r.prompts[f].replace(/\s+/g," "),D)})]),i("div",{className:"nm-diff-columns"},v)),g&&h.append(i("div",{className:"nm-readout",text:X(r,f)}),i("div",{className:"nm-diff-columns"},[R(r,f,0),R(r,f,1)]));let $=()=>{e.set("selected",e.get("selected")===f?-1:f),e.save_changes()};return h.addEventListener("click",$),h.addEventListener("keydown",x=>{(x.key==="Enter"||x.key===" ")&&(x.preventDefault(),$())}),h}function s(){if(o.replaceChildren(),!r.prompts.length){o.append(i("div",{className:"nm-empty",text:"No prompts to compare."}));return}let f=T("diverging"),u=E(r.change,{scale:"diverging",center:0}),m=r.divergence.filter(d=>d>=0).length,g=W(r.stats).map(d=>i("tr",{},d.map((h,v)=>i(v?"td":"th",{className:v?"nm-num":"",text:h}))));o.append(i("div",{className:"nm-toolbar"},[i("span",{className:"nm-title",text:r.title}),i("span",{className:"nm-readout",text:`${m} of ${r.prompts.length} continuations changed`})]),i("table",{className:"nm-diff-stats"},[i("tr",{},["",r.labels[0],r.labels[1],"change"].map(d=>i("th",{text:d}))),...g]),i("div",{className:"nm-legend"},[i("span",{text:`${r.labels[0]} tokens shaded by Δ log p:`}),i("span",{className:"nm-diff-swatch",text:b(u.lo,"+.2f"),style:{background:M(f,0),color:"#fff"}}),i("span",{className:"nm-diff-swatch nm-diff-zero",text:"0"}),i("span",{className:"nm-diff-swatch",text:b(u.hi,"+.2f"),style:{background:M(f,255),color:"#fff"}}),i("span",{className:"nm-diff-token nm-diff-first",text:"first divergence"})]),...r.prompts.map((d,h)=>a(h,u,f)))}function c(){r=V(e),s()}let l=["logprob_before","logprob_after","topk_probs","pieces_before","pieces_after","divergence","prompts","labels","stats","title","topk_pieces_before","topk_pieces_after"];for(let f of l)e.on(`change:${f}`,c);e.on("change:selected",s);let p=F(()=>s());return c(),()=>{for(let f of l)e.off(`change:${f}`,c);e.off("change:selected",s),p()}}var ie={render:J};export{q as changeShade,ie as default,V as readDiff,W as statRows};
