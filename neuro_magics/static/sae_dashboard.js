var ht={float32:Float32Array,int32:Int32Array,uint8:Uint8Array,float16:Uint16Array},A=null;function xt(){if(A)return A;A=new Float32Array(65536);for(let t=0;t<65536;t++)A[t]=gt(t);return A}function gt(t){let e=t&32768?-1:1,n=t>>10&31,r=t&1023;return n===0?e*2**-14*(r/1024):n===31?r?NaN:e*(1/0):e*2**(n-15)*(1+r/1024)}function bt(t){if(t instanceof DataView||ArrayBuffer.isView(t))return{buffer:t.buffer,byteOffset:t.byteOffset,byteLength:t.byteLength};if(t instanceof ArrayBuffer)return{buffer:t,byteOffset:0,byteLength:t.byteLength};throw new TypeError("binary array expected a DataView, TypedArray or ArrayBuffer as 'view'")}function C(t){if(t==null)return null;let{dtype:e,shape:n}=t,r=ht[e];if(!r)throw new TypeError(`unsupported dtype ${e}`);let{buffer:o,byteOffset:i,byteLength:l}=bt(t.view),f=n.reduce((d,_)=>d*_,1);if(f*r.BYTES_PER_ELEMENT!==l)throw new RangeError(`${e} array of shape [${n}] needs ${f*r.BYTES_PER_ELEMENT} bytes, got ${l}`);let M=i%r.BYTES_PER_ELEMENT===0?new r(o,i,f):new r(o.slice(i,i+l));if(e!=="float16")return{data:M,shape:[...n],dtype:e};let x=xt(),y=new Float32Array(f);for(let d=0;d<f;d++)y[d]=x[M[d]];return{data:y,shape:[...n],dtype:e}}var Q={sequential:["#440154","#482878","#3e4989","#31688e","#26828e","#1f9e89","#35b779","#6ece58","#b5de2b","#fde725"],diverging:["#2166ac","#4393c3","#92c5de","#d1e5f0","#f7f7f7","#fddbc7","#f4a582","#d6604d","#b2182b"],magnitude:["#fff7ec","#fee8c8","#fdd49e","#fdbb84","#fc8d59","#ef6548","#d7301f","#b30000","#7f0000"],categorical:["#4e79a7","#f28e2b","#e15759","#76b7b2","#59a14f","#edc948","#b07aa1","#ff9da7","#9c755f","#17becf","#bcbd22","#1f3b73"]},D=new Map;function L(t){let e=parseInt(t.slice(1),16);return[e>>16&255,e>>8&255,e&255]}function yt(t){let e=String(t||"").trim(),n=/^#([0-9a-f]{3})$/i.exec(e);return n?[...n[1]].map(r=>parseInt(r+r,16)):(n=/^#([0-9a-f]{6})$/i.exec(e),n?L(e):(n=/^rgba?\(\s*(\d+)[,\s]+(\d+)[,\s]+(\d+)/i.exec(e),n?n.slice(1,4).map(Number):null))}function vt([t,e,n]){return .2126*t+.7152*e+.0722*n<128}var Z=[["#92c5de","#4393c3","#2b5f8a"],["#9e3a2e","#d6604d","#f4a582"]],wt=["#5a1f0a","#a63603","#e6550d","#fd8d3c","#fdbe85"];function tt(t,e=null){let n=t in Q?t:"sequential",r=n==="diverging"||n==="magnitude"?yt(e):null,o=r&&vt(r),i=o?`${n}:${r.join(",")}`:n;if(D.has(i))return D.get(i);let l=Q[n].map(L);o&&n==="diverging"&&(l=[...Z[0].map(L),r,...Z[1].map(L)]),o&&n==="magnitude"&&(l=[r,...wt.map(L)]);let f=new Uint8ClampedArray(256*3);for(let b=0;b<256;b++){let M=b/255*(l.length-1),x=Math.min(Math.floor(M),l.length-2),y=M-x;for(let d=0;d<3;d++)f[b*3+d]=Math.round(l[x][d]*(1-y)+l[x+1][d]*y)}return D.set(i,f),f}function et(t,e,n){let r=(t-e)/(n-e);return Math.max(0,Math.min(255,Math.round(r*255)))}function nt(t,e){return`rgb(${t[e*3]}, ${t[e*3+1]}, ${t[e*3+2]})`}var kt=/^(\+)?(?:\.(\d+))?([fegd%])?$/;function N(t,e=""){if(t==null||Number.isNaN(t))return"–";if(!Number.isFinite(t))return t>0?"∞":"−∞";let n=kt.exec(e||"");if(!n)return String(t);let[,r,o,i="g"]=n,l=o===void 0?null:Number(o),f;switch(i){case"f":f=t.toFixed(l??6);break;case"e":f=t.toExponential(l??6).replace(/e([+-])(\d)$/,"e$10$2");break;case"%":f=`${(t*100).toFixed(l??6)}%`;break;case"d":f=Math.round(t).toString();break;default:f=String(Number(t.toPrecision(Math.max(1,l??4))))}return r&&t>=0?`+${f}`:f}var B="·";function W(t){let e=String(t??""),n=/[\n\r]/.test(e),r=/^[ \t]/.test(e),o=e.replace(/^[ \t]+/,"").replace(/\r?\n/g,"\\n").replace(/\r/g,"\\r").replace(/\t/g,"\\t");return e===""&&(o="∅"),{space:r,text:o,newline:n}}function rt(t){let{space:e,text:n}=W(t);return`${e?B:""}${n}`}function R(t){if(t==null||Number.isNaN(t))return"–";if(!Number.isFinite(t))return t>0?"∞":"−∞";let e=Math.abs(t);return e===0?"0":e>=999.5?Math.round(t).toLocaleString("en-US"):e<.001?t.toExponential(2).replace(/\.?0+e/,"e"):String(Number(t.toPrecision(3)))}var at=`
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
`;function a(t,e={},n=[]){let r=document.createElement(t);for(let[o,i]of Object.entries(e))o==="className"?r.className=i:o==="text"?r.textContent=i:o==="style"?Object.assign(r.style,i):r.setAttribute(o,i);for(let o of n)r.append(o);return r}function it(t,e){let n=a("div",{className:`nm-root nm-${e}`});return n.append(a("style",{text:at})),t.append(n),n}var ot=16384;function st(t,e,n){let r=Math.min(globalThis.devicePixelRatio||1,ot/Math.max(1,e),ot/Math.max(1,n));t.width=Math.max(1,Math.round(e*r)),t.height=Math.max(1,Math.round(n*r)),t.style.width=`${e}px`,t.style.height=`${n}px`;let o=t.getContext("2d");return o.setTransform(r,0,0,r,0,0),o}function V(t){let e=getComputedStyle(t),n=(r,o)=>{let i=e.getPropertyValue(r).trim();return i&&!i.startsWith("var(")?i:o};return{fg:n("--nm-fg","#1f1f1f"),muted:n("--nm-muted","#5f6368"),bg:n("--nm-bg","#ffffff"),border:n("--nm-border","#c8c8c8"),accent:n("--nm-accent","#1a73e8"),font:`11px ${e.fontFamily||"sans-serif"}`}}function ct(t,e=800){return t.clientWidth||t.parentElement?.clientWidth||e}function lt(t){let e=globalThis.matchMedia?.("(prefers-color-scheme: dark)");e?.addEventListener?.("change",t);let n=typeof MutationObserver>"u"?null:new MutationObserver(t);return n?.observe(document.body,{attributes:!0,attributeFilter:["class","data-jp-theme-name","data-jp-theme-light","style"]}),()=>{e?.removeEventListener?.("change",t),n?.disconnect()}}function ft(t,{running:e=!1,className:n="nm-token"}={}){let r=String(t??""),o=a("span",{className:n});if(e)return o.textContent=r.replace(/\r?\n/g,""),o.classList.add("nm-running"),/\n/.test(r)&&(o.textContent||o.append(a("span",{className:"nm-space",text:"⏎"})),o.append(a("br"))),o;let{space:i,text:l}=W(r);return i&&o.append(a("span",{className:"nm-space",text:B})),o.append(l),o}var U=400,F=110,Nt=`
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
`;function Mt(t){let e=Array.from(t,(n,r)=>r);return e.sort((n,r)=>t[r]-t[n]||n-r),e}function $t(t,e,n){let r=e.trim();return r?/^\d+$/.test(r)?t.filter(o=>String(o).startsWith(r)):n||[]:t}function St(t,e,n){let r=t.trim();return/^\d+$/.test(r)?`no feature number starts with ${r}`:r&&r===e?n||`no feature fires on “${r}”`:"press Enter to search the features for this token or text"}function Tt({model:t,el:e}){let n=it(e,"sae");n.append(a("style",{text:Nt}));let r=a("div",{className:"nm-title"}),o=a("input",{type:"search",placeholder:"feature #, or a token / text + Enter"}),i=a("div",{className:"nm-sae-rows",role:"listbox"}),l=a("div",{className:"nm-sae-card"});n.append(r,a("div",{className:"nm-sae-layout"},[a("div",{className:"nm-sae-list"},[o,i]),l]));let f=new Float32Array(0),b=new Uint8Array(0),M=[],x=t.get("selected");function y(){f=C(t.get("frequencies")).data,b=C(t.get("dead")).data,M=Mt(f),r.textContent=t.get("title"),d()}function d(){let m=$t(M,o.value,o.value.trim()===t.get("query")?t.get("matches"):null),c=f.length?Math.max(...m.slice(0,1).map(p=>f[p]),1e-12):1,s=x;i.replaceChildren(...m.slice(0,U).map(p=>{let u=a("div",{className:`nm-sae-row${b[p]?" nm-sae-dead":""}`,role:"option","data-feature":String(p),"aria-selected":String(p===s),title:b[p]?"dead feature":""},[a("span",{className:"nm-sae-id",text:`#${p}`}),a("span",{className:"nm-sae-bar",style:{flex:`0 0 ${Math.round(70*f[p]/c)}px`}}),a("span",{text:b[p]?"dead":`${N(100*f[p],".2f")}%`})]);return u.addEventListener("click",()=>_(p)),u})),m.length>U&&i.append(a("div",{className:"nm-sae-more",text:`${m.length-U} more: search to narrow`})),m.length||i.append(a("div",{className:"nm-sae-more",text:St(o.value,t.get("query"),t.get("search_note"))}))}function _(m){x=m,S(),t.send({type:"select",feature:m})}function Y(m){let c=l.querySelector(".nm-sae-status");c&&(c.textContent=m)}function P(m,c){Y(c),t.send(m)}function H(m,c,s){let p=m.tokens.map((u,v)=>{let g=m.activations[v],w=ft(u,{running:!0,className:`nm-sae-tok nm-token${v===m.center?" nm-sae-center":""}`});if(w.title=R(g),g>0){let k=et(g,0,c);w.style.background=nt(s,k),w.style.color=.299*s[k*3]+.587*s[k*3+1]+.114*s[k*3+2]<150?"#ffffff":"#111111"}return w});return a("div",{className:"nm-sae-context"},[a("span",{className:"nm-sae-value",text:R(m.activation)}),...p])}function mt(m,c,s){let p=Math.min(520,Math.max(240,ct(l)-10)),u=st(m,p,F),v=V(n),g=c.length,w=Math.max(1,...c),k=F-18;u.fillStyle=v.accent;for(let T=0;T<g;T++){let I=k*c[T]/w;u.fillRect(T*p/g+1,k-I,p/g-2,I)}u.font=v.font,u.fillStyle=v.muted,u.fillText(N(s[0],".3g"),0,F-4);let $=N(s[g],".3g");u.fillText($,p-u.measureText($).width,F-4)}function S(){let m=t.get("cards")||[],c=m.findIndex(h=>h.feature===x),s=m[c];if(!s){l.setAttribute("aria-busy","true"),l.replaceChildren(a("div",{className:"nm-title",text:`Feature ${x}`}),a("div",{className:"nm-empty",text:"asking the kernel for this card... (a saved notebook has only the most frequent features' cards)"}),a("div",{className:"nm-sae-status",text:t.get("status")})),d();return}l.removeAttribute("aria-busy");let p=V(n),u=tt("magnitude",p.bg),v=s.max_activation||1,g=a("canvas",{className:"nm-sae-histogram"}),w=C(t.get("hist_counts")),k=C(t.get("hist_edges")),$=w.shape[1],T=w.data.subarray(c*$,(c+1)*$),I=k.data.subarray(c*($+1),(c+1)*($+1)),q=a("input",{type:"number",step:"any",value:String(t.get("steer_coef"))}),z=a("button",{text:"steer"}),O=a("button",{text:"ablate"}),dt=t.get("can_act");for(let h of[z,O])h.disabled=!dt;z.addEventListener("click",()=>P({type:"steer",feature:s.feature,coef:Number(q.value)},`steer by feature ${s.feature} (coef ${q.value}): queued, the kernel runs it when it is free...`)),O.addEventListener("click",()=>P({type:"ablate",feature:s.feature},`ablate feature ${s.feature}: queued, the kernel runs it when it is free...`));let X=(h,E)=>a("table",{},[a("tr",{},[a("td",{className:"nm-sae-section",text:E})]),...h.map(([ut,J])=>a("tr",{},[a("td",{className:"nm-token",text:rt(ut)}),a("td",{className:"nm-num",text:`${J>0?"+":""}${R(J)}`})]))]),j=[a("div",{className:"nm-title",text:`Feature ${s.feature}${s.dead?" (dead)":""}`}),a("div",{className:"nm-readout",text:`fires on ${N(100*s.frequency,".3f")}% of held-out tokens · max activation ${N(s.max_activation,".3f")}`}),a("div",{className:"nm-sae-section",text:"Activation histogram (non-zero)"}),g,a("div",{className:"nm-sae-section",text:"Logit effects of the decoder direction"}),s.logits_note?a("div",{className:"nm-empty",text:s.logits_note}):a("div",{className:"nm-sae-logits"},[X(s.top_logits,"raises"),X(s.bottom_logits,"lowers")]),a("div",{className:"nm-sae-actions"},[a("span",{text:"coef"}),q,z,O]),a("div",{className:"nm-sae-status",text:t.get("status")}),a("div",{className:"nm-sae-section",text:"Top activations"}),...s.contexts.length?s.contexts.map(h=>H(h,v,u)):[a("div",{className:"nm-empty",text:"it never fires on the held-out texts"})]];for(let h of s.bands.filter(E=>E.contexts.length))j.push(a("div",{className:"nm-sae-section",text:`Interval ${N(h.low,".3g")} – ${N(h.high,".3g")} · ${N(100*h.share,".1f")}% of firings`})),j.push(...h.contexts.map(E=>H(E,v,u)));l.replaceChildren(...j),mt(g,T,I),d()}o.addEventListener("keydown",m=>{if(m.key!=="Enter")return;let c=o.value.trim();/^\d+$/.test(c)&&Number(c)<f.length?_(Number(c)):c&&(i.replaceChildren(a("div",{className:"nm-sae-more",text:`searching for “${c}”: queued, the kernel answers when it is free...`})),P({type:"search",query:c},`searching for “${c}”...`))}),o.addEventListener("input",d);let K=()=>Y(t.get("status")),G=()=>{x=t.get("selected"),S()};t.on("change:frequencies",y),t.on("change:cards",S),t.on("change:selected",G),t.on("change:status",K),t.on("change:matches",d);let pt=lt(S);return y(),S(),()=>{t.off("change:frequencies",y),t.off("change:cards",S),t.off("change:selected",G),t.off("change:status",K),t.off("change:matches",d),pt()}}var jt={render:Tt};export{jt as default,St as emptyListNote,Mt as featureOrder,$t as filterFeatures};
