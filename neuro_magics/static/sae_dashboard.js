var ge={float32:Float32Array,int32:Int32Array,uint8:Uint8Array,float16:Uint16Array},A=null;function he(){if(A)return A;A=new Float32Array(65536);for(let e=0;e<65536;e++)A[e]=xe(e);return A}function xe(e){let t=e&32768?-1:1,n=e>>10&31,a=e&1023;return n===0?t*2**-14*(a/1024):n===31?a?NaN:t*(1/0):t*2**(n-15)*(1+a/1024)}function be(e){if(e instanceof DataView||ArrayBuffer.isView(e))return{buffer:e.buffer,byteOffset:e.byteOffset,byteLength:e.byteLength};if(e instanceof ArrayBuffer)return{buffer:e,byteOffset:0,byteLength:e.byteLength};throw new TypeError("binary array expected a DataView, TypedArray or ArrayBuffer as 'view'")}function C(e){if(e==null)return null;let{dtype:t,shape:n}=e,a=ge[t];if(!a)throw new TypeError(`unsupported dtype ${t}`);let{buffer:o,byteOffset:i,byteLength:l}=be(e.view),f=n.reduce((p,L)=>p*L,1);if(f*a.BYTES_PER_ELEMENT!==l)throw new RangeError(`${t} array of shape [${n}] needs ${f*a.BYTES_PER_ELEMENT} bytes, got ${l}`);let M=i%a.BYTES_PER_ELEMENT===0?new a(o,i,f):new a(o.slice(i,i+l));if(t!=="float16")return{data:M,shape:[...n],dtype:t};let h=he(),y=new Float32Array(f);for(let p=0;p<f;p++)y[p]=h[M[p]];return{data:y,shape:[...n],dtype:t}}var Q={sequential:["#440154","#482878","#3e4989","#31688e","#26828e","#1f9e89","#35b779","#6ece58","#b5de2b","#fde725"],diverging:["#2166ac","#4393c3","#92c5de","#d1e5f0","#f7f7f7","#fddbc7","#f4a582","#d6604d","#b2182b"],magnitude:["#fff7ec","#fee8c8","#fdd49e","#fdbb84","#fc8d59","#ef6548","#d7301f","#b30000","#7f0000"],categorical:["#4e79a7","#f28e2b","#e15759","#76b7b2","#59a14f","#edc948","#b07aa1","#ff9da7","#9c755f","#17becf","#bcbd22","#1f3b73"]},D=new Map;function I(e){let t=parseInt(e.slice(1),16);return[t>>16&255,t>>8&255,t&255]}function ye(e){let t=String(e||"").trim(),n=/^#([0-9a-f]{3})$/i.exec(t);return n?[...n[1]].map(a=>parseInt(a+a,16)):(n=/^#([0-9a-f]{6})$/i.exec(t),n?I(t):(n=/^rgba?\(\s*(\d+)[,\s]+(\d+)[,\s]+(\d+)/i.exec(t),n?n.slice(1,4).map(Number):null))}function ve([e,t,n]){return .2126*e+.7152*t+.0722*n<128}var Z=[["#92c5de","#4393c3","#2b5f8a"],["#9e3a2e","#d6604d","#f4a582"]],we=["#5a1f0a","#a63603","#e6550d","#fd8d3c","#fdbe85"];function ee(e,t=null){let n=e in Q?e:"sequential",a=n==="diverging"||n==="magnitude"?ye(t):null,o=a&&ve(a),i=o?`${n}:${a.join(",")}`:n;if(D.has(i))return D.get(i);let l=Q[n].map(I);o&&n==="diverging"&&(l=[...Z[0].map(I),a,...Z[1].map(I)]),o&&n==="magnitude"&&(l=[a,...we.map(I)]);let f=new Uint8ClampedArray(256*3);for(let b=0;b<256;b++){let M=b/255*(l.length-1),h=Math.min(Math.floor(M),l.length-2),y=M-h;for(let p=0;p<3;p++)f[b*3+p]=Math.round(l[h][p]*(1-y)+l[h+1][p]*y)}return D.set(i,f),f}function te(e,t,n){let a=(e-t)/(n-t);return Math.max(0,Math.min(255,Math.round(a*255)))}function ne(e,t){return`rgb(${e[t*3]}, ${e[t*3+1]}, ${e[t*3+2]})`}var ke=/^(\+)?(?:\.(\d+))?([fegd%])?$/;function N(e,t=""){if(e==null||Number.isNaN(e))return"–";if(!Number.isFinite(e))return e>0?"∞":"−∞";let n=ke.exec(t||"");if(!n)return String(e);let[,a,o,i="g"]=n,l=o===void 0?null:Number(o),f;switch(i){case"f":f=e.toFixed(l??6);break;case"e":f=e.toExponential(l??6).replace(/e([+-])(\d)$/,"e$10$2");break;case"%":f=`${(e*100).toFixed(l??6)}%`;break;case"d":f=Math.round(e).toString();break;default:f=String(Number(e.toPrecision(Math.max(1,l??4))))}return a&&e>=0?`+${f}`:f}var B="·";function V(e){let t=String(e??""),n=/[\n\r]/.test(t),a=/^[ \t]/.test(t),o=t.replace(/^[ \t]+/,"").replace(/\r?\n/g,"\\n").replace(/\r/g,"\\r").replace(/\t/g,"\\t");return t===""&&(o="∅"),{space:a,text:o,newline:n}}function ae(e){let{space:t,text:n}=V(e);return`${t?B:""}${n}`}function _(e){if(e==null||Number.isNaN(e))return"–";if(!Number.isFinite(e))return e>0?"∞":"−∞";let t=Math.abs(e);return t===0?"0":t>=999.5?Math.round(e).toLocaleString("en-US"):t<.001?e.toExponential(2).replace(/\.?0+e/,"e"):String(Number(e.toPrecision(3)))}var re=`
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
`;function r(e,t={},n=[]){let a=document.createElement(e);for(let[o,i]of Object.entries(t))o==="className"?a.className=i:o==="text"?a.textContent=i:o==="style"?Object.assign(a.style,i):a.setAttribute(o,i);for(let o of n)a.append(o);return a}function ie(e,t){let n=r("div",{className:`nm-root nm-${t}`});return n.append(r("style",{text:re})),e.append(n),n}var oe=16384;function se(e,t,n){let a=Math.min(globalThis.devicePixelRatio||1,oe/Math.max(1,t),oe/Math.max(1,n));e.width=Math.max(1,Math.round(t*a)),e.height=Math.max(1,Math.round(n*a)),e.style.width=`${t}px`,e.style.height=`${n}px`;let o=e.getContext("2d");return o.setTransform(a,0,0,a,0,0),o}function W(e){let t=getComputedStyle(e),n=(a,o)=>{let i=t.getPropertyValue(a).trim();return i&&!i.startsWith("var(")?i:o};return{fg:n("--nm-fg","#1f1f1f"),muted:n("--nm-muted","#5f6368"),bg:n("--nm-bg","#ffffff"),border:n("--nm-border","#c8c8c8"),accent:n("--nm-accent","#1a73e8"),font:`11px ${t.fontFamily||"sans-serif"}`}}function ce(e,t=800){return e.clientWidth||e.parentElement?.clientWidth||t}function le(e){let t=globalThis.matchMedia?.("(prefers-color-scheme: dark)");t?.addEventListener?.("change",e);let n=typeof MutationObserver>"u"?null:new MutationObserver(e);return n?.observe(document.body,{attributes:!0,attributeFilter:["class","data-jp-theme-name","data-jp-theme-light","style"]}),()=>{t?.removeEventListener?.("change",e),n?.disconnect()}}function fe(e,{running:t=!1,className:n="nm-token"}={}){let a=String(e??""),o=r("span",{className:n});if(t)return o.textContent=a.replace(/\r?\n/g,""),o.classList.add("nm-running"),/\n/.test(a)&&(o.textContent||o.append(r("span",{className:"nm-space",text:"⏎"})),o.append(r("br"))),o;let{space:i,text:l}=V(a);return i&&o.append(r("span",{className:"nm-space",text:B})),o.append(l),o}var U=400,F=110,Ne=`
.nm-sae-layout { display: flex; gap: 12px; align-items: flex-start; flex-wrap: wrap; }
.nm-sae-list { flex: 0 0 230px; border: 1px solid var(--nm-border); border-radius: 3px; }
.nm-sae-list input { width: 100%; font: inherit; color: var(--nm-fg); background: var(--nm-panel);
  border: none; border-bottom: 1px solid var(--nm-border); padding: 4px 6px; }
.nm-sae-rows { max-height: 520px; overflow-y: auto; }
.nm-sae-row { display: flex; gap: 6px; align-items: center; padding: 1px 6px; cursor: pointer;
  font-variant-numeric: tabular-nums; }
.nm-sae-row:hover { background: var(--nm-panel); }
.nm-sae-row[aria-selected="true"] { outline: 2px solid var(--nm-accent); outline-offset: -2px; }
.nm-sae-row .nm-sae-id { width: 4.5em; text-align: right; }
.nm-sae-row .nm-sae-bar { flex: 1; height: 6px; background: var(--nm-accent); opacity: 0.6; min-width: 1px; }
.nm-sae-row.nm-sae-dead { color: var(--nm-muted); }
.nm-sae-more { color: var(--nm-muted); padding: 3px 6px; }
.nm-sae-card { flex: 1 1 420px; min-width: 300px; }
.nm-sae-section { font-weight: 600; margin: 10px 0 3px; }
.nm-sae-logits { display: flex; gap: 16px; flex-wrap: wrap; }
.nm-sae-logits table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
.nm-sae-logits td { padding: 0 6px 0 0; }
.nm-sae-context { margin: 2px 0; white-space: pre-wrap; overflow-wrap: anywhere; }
.nm-sae-context .nm-sae-value { display: inline-block; width: 4.5em; color: var(--nm-muted);
  font-variant-numeric: tabular-nums; }
.nm-sae-tok { border-radius: 2px; padding: 0 1px; }
.nm-sae-tok.nm-sae-center { outline: 1px solid var(--nm-fg); }
.nm-sae-actions { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; margin-top: 8px; }
.nm-sae-actions input, .nm-sae-actions button { font: inherit; color: var(--nm-fg); background: var(--nm-panel);
  border: 1px solid var(--nm-border); border-radius: 3px; padding: 1px 6px; }
.nm-sae-actions input { width: 5em; }
.nm-sae-status { color: var(--nm-muted); margin-top: 4px; }
`;function Me(e){let t=Array.from(e,(n,a)=>a);return t.sort((n,a)=>e[a]-e[n]||n-a),t}function $e(e,t,n){let a=t.trim();return a?/^\d+$/.test(a)?e.filter(o=>String(o).startsWith(a)):n||[]:e}function Se(e,t,n){let a=e.trim();return/^\d+$/.test(a)?`no feature number starts with ${a}`:a&&a===t?n||`no feature fires on “${a}”`:"press Enter to search the features for this token or text"}function Te({model:e,el:t}){let n=ie(t,"sae");n.append(r("style",{text:Ne}));let a=r("div",{className:"nm-title"}),o=r("input",{type:"search",placeholder:"feature #, or a token / text + Enter"}),i=r("div",{className:"nm-sae-rows",role:"listbox"}),l=r("div",{className:"nm-sae-card"});n.append(a,r("div",{className:"nm-sae-layout"},[r("div",{className:"nm-sae-list"},[o,i]),l]));let f=new Float32Array(0),b=new Uint8Array(0),M=[],h=e.get("selected");function y(){f=C(e.get("frequencies")).data,b=C(e.get("dead")).data,M=Me(f),a.textContent=e.get("title"),p()}function p(){let m=$e(M,o.value,o.value.trim()===e.get("query")?e.get("matches"):null),c=f.length?Math.max(...m.slice(0,1).map(d=>f[d]),1e-12):1,s=h;i.replaceChildren(...m.slice(0,U).map(d=>{let u=r("div",{className:`nm-sae-row${b[d]?" nm-sae-dead":""}`,role:"option","data-feature":String(d),"aria-selected":String(d===s),title:b[d]?"dead feature":""},[r("span",{className:"nm-sae-id",text:`#${d}`}),r("span",{className:"nm-sae-bar",style:{flex:`0 0 ${Math.round(70*f[d]/c)}px`}}),r("span",{text:b[d]?"dead":`${N(100*f[d],".2f")}%`})]);return u.addEventListener("click",()=>L(d)),u})),m.length>U&&i.append(r("div",{className:"nm-sae-more",text:`${m.length-U} more: search to narrow`})),m.length||i.append(r("div",{className:"nm-sae-more",text:Se(o.value,e.get("query"),e.get("search_note"))}))}function L(m){h=m,S(),e.send({type:"select",feature:m})}function Y(m){let c=l.querySelector(".nm-sae-status");c&&(c.textContent=m)}function P(m,c){Y(c),e.send(m)}function G(m,c,s){let d=m.tokens.map((u,v)=>{let x=m.activations[v],w=fe(u,{running:!0,className:`nm-sae-tok nm-token${v===m.center?" nm-sae-center":""}`});if(w.title=_(x),x>0){let k=te(x,0,c);w.style.background=ne(s,k),w.style.color=.299*s[k*3]+.587*s[k*3+1]+.114*s[k*3+2]<150?"#ffffff":"#111111"}return w});return r("div",{className:"nm-sae-context"},[r("span",{className:"nm-sae-value",text:_(m.activation)}),...d])}function me(m,c,s){let d=Math.min(520,Math.max(240,ce(l)-10)),u=se(m,d,F),v=W(n),x=c.length,w=Math.max(1,...c),k=F-18;u.fillStyle=v.accent;for(let T=0;T<x;T++){let R=k*c[T]/w;u.fillRect(T*d/x+1,k-R,d/x-2,R)}u.font=v.font,u.fillStyle=v.muted,u.fillText(N(s[0],".3g"),0,F-4);let $=N(s[x],".3g");u.fillText($,d-u.measureText($).width,F-4)}function S(){let m=e.get("cards")||[],c=m.findIndex(g=>g.feature===h),s=m[c];if(!s){l.setAttribute("aria-busy","true"),l.replaceChildren(r("div",{className:"nm-title",text:`Feature ${h}`}),r("div",{className:"nm-empty",text:"asking the kernel for this card... (a saved notebook has only the most frequent features' cards)"}),r("div",{className:"nm-sae-status",text:e.get("status")})),p();return}l.removeAttribute("aria-busy");let d=W(n),u=ee("magnitude",d.bg),v=s.max_activation||1,x=r("canvas",{className:"nm-sae-histogram"}),w=C(e.get("hist_counts")),k=C(e.get("hist_edges")),$=w.shape[1],T=w.data.subarray(c*$,(c+1)*$),R=k.data.subarray(c*($+1),(c+1)*($+1)),q=r("input",{type:"number",step:"any",value:String(e.get("steer_coef"))}),z=r("button",{text:"steer"}),O=r("button",{text:"ablate"}),pe=e.get("can_act");for(let g of[z,O])g.disabled=!pe;z.addEventListener("click",()=>P({type:"steer",feature:s.feature,coef:Number(q.value)},`steer by feature ${s.feature} (coef ${q.value}): queued, the kernel runs it when it is free...`)),O.addEventListener("click",()=>P({type:"ablate",feature:s.feature},`ablate feature ${s.feature}: queued, the kernel runs it when it is free...`));let X=(g,E)=>r("table",{},[r("tr",{},[r("td",{className:"nm-sae-section",text:E})]),...g.map(([ue,J])=>r("tr",{},[r("td",{className:"nm-token",text:ae(ue)}),r("td",{className:"nm-num",text:`${J>0?"+":""}${_(J)}`})]))]),j=[r("div",{className:"nm-title",text:`Feature ${s.feature}${s.dead?" (dead)":""}`}),r("div",{className:"nm-readout",text:`fires on ${N(100*s.frequency,".3f")}% of held-out tokens · max activation ${N(s.max_activation,".3f")}`}),r("div",{className:"nm-sae-section",text:"Activation histogram (non-zero)"}),x,r("div",{className:"nm-sae-section",text:"Logit effects of the decoder direction"}),s.logits_note?r("div",{className:"nm-empty",text:s.logits_note}):r("div",{className:"nm-sae-logits"},[X(s.top_logits,"raises"),X(s.bottom_logits,"lowers")]),r("div",{className:"nm-sae-actions"},[r("span",{text:"coef"}),q,z,O]),r("div",{className:"nm-sae-status",text:e.get("status")}),r("div",{className:"nm-sae-section",text:"Top activations"}),...s.contexts.length?s.contexts.map(g=>G(g,v,u)):[r("div",{className:"nm-empty",text:"it never fires on the held-out texts"})]];for(let g of s.bands.filter(E=>E.contexts.length))j.push(r("div",{className:"nm-sae-section",text:`Interval ${N(g.low,".3g")} – ${N(g.high,".3g")} · ${N(100*g.share,".1f")}% of firings`})),j.push(...g.contexts.map(E=>G(E,v,u)));l.replaceChildren(...j),me(x,T,R),p()}o.addEventListener("keydown",m=>{if(m.key!=="Enter")return;let c=o.value.trim();/^\d+$/.test(c)&&Number(c)<f.length?L(Number(c)):c&&(i.replaceChildren(r("div",{className:"nm-sae-more",text:`searching for “${c}”: queued, the kernel answers when it is free...`})),P({type:"search",query:c},`searching for “${c}”...`))}),o.addEventListener("input",p);let H=()=>Y(e.get("status")),K=()=>{h=e.get("selected"),S()};e.on("change:frequencies",y),e.on("change:cards",S),e.on("change:selected",K),e.on("change:status",H),e.on("change:matches",p);let de=le(S);return y(),S(),()=>{e.off("change:frequencies",y),e.off("change:cards",S),e.off("change:selected",K),e.off("change:status",H),e.off("change:matches",p),de()}}var je={render:Te};export{je as default,Se as emptyListNote,Me as featureOrder,$e as filterFeatures};
