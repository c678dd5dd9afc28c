var ft={float32:Float32Array,int32:Int32Array,uint8:Uint8Array,float16:Uint16Array},$=null;function mt(){if($)return $;$=new Float32Array(65536);for(let t=0;t<65536;t++)$[t]=pt(t);return $}function pt(t){let n=t&32768?-1:1,e=t>>10&31,a=t&1023;return e===0?n*2**-14*(a/1024):e===31?a?NaN:n*(1/0):n*2**(e-15)*(1+a/1024)}function dt(t){if(t instanceof DataView||ArrayBuffer.isView(t))return{buffer:t.buffer,byteOffset:t.byteOffset,byteLength:t.byteLength};if(t instanceof ArrayBuffer)return{buffer:t,byteOffset:0,byteLength:t.byteLength};throw new TypeError("binary array expected a DataView, TypedArray or ArrayBuffer as 'view'")}function A(t){if(t==null)return null;let{dtype:n,shape:e}=t,a=ft[n];if(!a)throw new TypeError(`unsupported dtype ${n}`);let{buffer:o,byteOffset:s,byteLength:c}=dt(t.view),i=e.reduce((d,_)=>d*_,1);if(i*a.BYTES_PER_ELEMENT!==c)throw new RangeError(`${n} array of shape [${e}] needs ${i*a.BYTES_PER_ELEMENT} bytes, got ${c}`);let k=s%a.BYTES_PER_ELEMENT===0?new a(o,s,i):new a(o.slice(s,s+c));if(n!=="float16")return{data:k,shape:[...e],dtype:n};let h=mt(),v=new Float32Array(i);for(let d=0;d<i;d++)v[d]=h[k[d]];return{data:v,shape:[...e],dtype:n}}var H={sequential:["#440154","#482878","#3e4989","#31688e","#26828e","#1f9e89","#35b779","#6ece58","#b5de2b","#fde725"],diverging:["#2166ac","#4393c3","#92c5de","#d1e5f0","#f7f7f7","#fddbc7","#f4a582","#d6604d","#b2182b"],magnitude:["#fff7ec","#fee8c8","#fdd49e","#fdbb84","#fc8d59","#ef6548","#d7301f","#b30000","#7f0000"],categorical:["#4e79a7","#f28e2b","#e15759","#76b7b2","#59a14f","#edc948","#b07aa1","#ff9da7","#9c755f","#17becf","#bcbd22","#1f3b73"]},O=new Map;function C(t){let n=parseInt(t.slice(1),16);return[n>>16&255,n>>8&255,n&255]}function ut(t){let n=String(t||"").trim(),e=/^#([0-9a-f]{3})$/i.exec(n);return e?[...e[1]].map(a=>parseInt(a+a,16)):(e=/^#([0-9a-f]{6})$/i.exec(n),e?C(n):(e=/^rgba?\(\s*(\d+)[,\s]+(\d+)[,\s]+(\d+)/i.exec(n),e?e.slice(1,4).map(Number):null))}function gt([t,n,e]){return .2126*t+.7152*n+.0722*e<128}var K=[["#92c5de","#4393c3","#2b5f8a"],["#9e3a2e","#d6604d","#f4a582"]],xt=["#5a1f0a","#a63603","#e6550d","#fd8d3c","#fdbe85"];function G(t,n=null){let e=t in H?t:"sequential",a=e==="diverging"||e==="magnitude"?ut(n):null,o=a&&gt(a),s=o?`${e}:${a.join(",")}`:e;if(O.has(s))return O.get(s);let c=H[e].map(C);o&&e==="diverging"&&(c=[...K[0].map(C),a,...K[1].map(C)]),o&&e==="magnitude"&&(c=[a,...xt.map(C)]);let i=new Uint8ClampedArray(256*3);for(let y=0;y<256;y++){let k=y/255*(c.length-1),h=Math.min(Math.floor(k),c.length-2),v=k-h;for(let d=0;d<3;d++)i[y*3+d]=Math.round(c[h][d]*(1-v)+c[h+1][d]*v)}return O.set(s,i),i}function X(t,n,e){let a=(t-n)/(e-n);return Math.max(0,Math.min(255,Math.round(a*255)))}function J(t,n){return`rgb(${t[n*3]}, ${t[n*3+1]}, ${t[n*3+2]})`}var ht=/^(\+)?(?:\.(\d+))?([fegd%])?$/;function x(t,n=""){if(t==null||Number.isNaN(t))return"–";if(!Number.isFinite(t))return t>0?"∞":"−∞";let e=ht.exec(n||"");if(!e)return String(t);let[,a,o,s="g"]=e,c=o===void 0?null:Number(o),i;switch(s){case"f":i=t.toFixed(c??6);break;case"e":i=t.toExponential(c??6).replace(/e([+-])(\d)$/,"e$10$2");break;case"%":i=`${(t*100).toFixed(c??6)}%`;break;case"d":i=Math.round(t).toString();break;default:i=String(Number(t.toPrecision(Math.max(1,c??4))))}return a&&t>=0?`+${i}`:i}var bt={" ":"␣","\n":"↵","	":"⇥","\r":"␍"};function q(t){return t===""?"∅":String(t).replace(/[ \n\t\r]/g,n=>bt[n])}var Q=`
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
`;function r(t,n={},e=[]){let a=document.createElement(t);for(let[o,s]of Object.entries(n))o==="className"?a.className=s:o==="text"?a.textContent=s:o==="style"?Object.assign(a.style,s):a.setAttribute(o,s);for(let o of e)a.append(o);return a}function tt(t,n){let e=r("div",{className:`nm-root nm-${n}`});return e.append(r("style",{text:Q})),t.append(e),e}var Z=16384;function et(t,n,e){let a=Math.min(globalThis.devicePixelRatio||1,Z/Math.max(1,n),Z/Math.max(1,e));t.width=Math.max(1,Math.round(n*a)),t.height=Math.max(1,Math.round(e*a)),t.style.width=`${n}px`,t.style.height=`${e}px`;let o=t.getContext("2d");return o.setTransform(a,0,0,a,0,0),o}function j(t){let n=getComputedStyle(t),e=(a,o)=>{let s=n.getPropertyValue(a).trim();return s&&!s.startsWith("var(")?s:o};return{fg:e("--nm-fg","#1f1f1f"),muted:e("--nm-muted","#5f6368"),bg:e("--nm-bg","#ffffff"),border:e("--nm-border","#c8c8c8"),accent:e("--nm-accent","#1a73e8"),font:`11px ${n.fontFamily||"sans-serif"}`}}function nt(t,n=800){return t.clientWidth||t.parentElement?.clientWidth||n}function at(t){let n=globalThis.matchMedia?.("(prefers-color-scheme: dark)");n?.addEventListener?.("change",t);let e=typeof MutationObserver>"u"?null:new MutationObserver(t);return e?.observe(document.body,{attributes:!0,attributeFilter:["class","data-jp-theme-name","data-jp-theme-light","style"]}),()=>{n?.removeEventListener?.("change",t),e?.disconnect()}}var D=400,R=110,yt=`
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
`;function vt(t){let n=Array.from(t,(e,a)=>a);return n.sort((e,a)=>t[a]-t[e]||e-a),n}function wt(t,n,e){let a=n.trim();return a?/^\d+$/.test(a)?t.filter(o=>String(o).startsWith(a)):e||[]:t}function kt({model:t,el:n}){let e=tt(n,"sae");e.append(r("style",{text:yt}));let a=r("div",{className:"nm-title"}),o=r("input",{type:"search",placeholder:"feature #, or a token / text + Enter"}),s=r("div",{className:"nm-sae-rows",role:"listbox"}),c=r("div",{className:"nm-sae-card"});e.append(a,r("div",{className:"nm-sae-layout"},[r("div",{className:"nm-sae-list"},[o,s]),c]));let i=new Float32Array(0),y=new Uint8Array(0),k=[],h=t.get("selected");function v(){i=A(t.get("frequencies")).data,y=A(t.get("dead")).data,k=vt(i),a.textContent=t.get("title"),d()}function d(){let f=wt(k,o.value,o.value.trim()===t.get("query")?t.get("matches"):null),l=i.length?Math.max(...f.slice(0,1).map(p=>i[p]),1e-12):1,m=h;s.replaceChildren(...f.slice(0,D).map(p=>{let u=r("div",{className:`nm-sae-row${y[p]?" nm-sae-dead":""}`,role:"option","data-feature":String(p),"aria-selected":String(p===m),title:y[p]?"dead feature":""},[r("span",{className:"nm-sae-id",text:`#${p}`}),r("span",{className:"nm-sae-bar",style:{flex:`0 0 ${Math.round(70*i[p]/l)}px`}}),r("span",{text:y[p]?"dead":`${x(100*i[p],".2f")}%`})]);return u.addEventListener("click",()=>_(p)),u})),f.length>D&&s.append(r("div",{className:"nm-sae-more",text:`${f.length-D} more: search to narrow`})),f.length||s.append(r("div",{className:"nm-sae-more",text:t.get("search_note")||"no feature matches"}))}function _(f){h=f,S(),t.send({type:"select",feature:f})}function rt(f){let l=c.querySelector(".nm-sae-status");l&&(l.textContent=f)}function B(f,l,m){let p=f.tokens.map((u,w)=>{let b=f.activations[w],N=r("span",{className:`nm-sae-tok nm-token${w===f.center?" nm-sae-center":""}`,text:q(u),title:x(b,".3f")});return b>0&&(N.style.background=J(m,X(b,-l,l))),N});return r("div",{className:"nm-sae-context"},[r("span",{className:"nm-sae-value",text:x(f.activation,".3f")}),...p])}function ot(f,l,m){let p=Math.min(520,Math.max(240,nt(c)-10)),u=et(f,p,R),w=j(e),b=l.length,N=Math.max(1,...l),I=R-18;u.fillStyle=w.accent;for(let T=0;T<b;T++){let L=I*l[T]/N;u.fillRect(T*p/b+1,I-L,p/b-2,L)}u.font=w.font,u.fillStyle=w.muted,u.fillText(x(m[0],".3g"),0,R-4);let M=x(m[b],".3g");u.fillText(M,p-u.measureText(M).width,R-4)}function S(){let f=t.get("cards")||[],l=f.findIndex(g=>g.feature===h),m=f[l];if(!m){c.setAttribute("aria-busy","true"),c.replaceChildren(r("div",{className:"nm-title",text:`Feature ${h}`}),r("div",{className:"nm-empty",text:"asking the kernel for this card... (a saved notebook has only the most frequent features' cards)"}),r("div",{className:"nm-sae-status",text:t.get("status")})),d();return}c.removeAttribute("aria-busy");let p=j(e),u=G("diverging",p.bg),w=m.max_activation||1,b=r("canvas",{className:"nm-sae-histogram"}),N=A(t.get("hist_counts")),I=A(t.get("hist_edges")),M=N.shape[1],T=N.data.subarray(l*M,(l+1)*M),L=I.data.subarray(l*(M+1),(l+1)*(M+1)),U=r("input",{type:"number",step:"any",value:String(t.get("steer_coef"))}),F=r("button",{text:"steer"}),P=r("button",{text:"ablate"}),st=t.get("can_act");for(let g of[F,P])g.disabled=!st;F.addEventListener("click",()=>t.send({type:"steer",feature:m.feature,coef:Number(U.value)})),P.addEventListener("click",()=>t.send({type:"ablate",feature:m.feature}));let Y=(g,E)=>r("table",{},[r("tr",{},[r("td",{className:"nm-sae-section",text:E})]),...g.map(([ct,lt])=>r("tr",{},[r("td",{className:"nm-token",text:q(ct)}),r("td",{className:"nm-num",text:x(lt,"+.3f")})]))]),z=[r("div",{className:"nm-title",text:`Feature ${m.feature}${m.dead?" (dead)":""}`}),r("div",{className:"nm-readout",text:`fires on ${x(100*m.frequency,".3f")}% of held-out tokens · max activation ${x(m.max_activation,".3f")}`}),r("div",{className:"nm-sae-section",text:"Activation histogram (non-zero)"}),b,r("div",{className:"nm-sae-section",text:"Logit effects of the decoder direction"}),m.logits_note?r("div",{className:"nm-empty",text:m.logits_note}):r("div",{className:"nm-sae-logits"},[Y(m.top_logits,"raises"),Y(m.bottom_logits,"lowers")]),r("div",{className:"nm-sae-actions"},[r("span",{text:"coef"}),U,F,P]),r("div",{className:"nm-sae-status",text:t.get("status")}),r("div",{className:"nm-sae-section",text:"Top activations"}),...m.contexts.length?m.contexts.map(g=>B(g,w,u)):[r("div",{className:"nm-empty",text:"it never fires on the held-out texts"})]];for(let g of m.bands.filter(E=>E.contexts.length))z.push(r("div",{className:"nm-sae-section",text:`Interval ${x(g.low,".3g")} – ${x(g.high,".3g")} · ${x(100*g.share,".1f")}% of firings`})),z.push(...g.contexts.map(E=>B(E,w,u)));c.replaceChildren(...z),ot(b,T,L),d()}o.addEventListener("keydown",f=>{if(f.key!=="Enter")return;let l=o.value.trim();/^\d+$/.test(l)&&Number(l)<i.length?_(Number(l)):l&&t.send({type:"search",query:l})}),o.addEventListener("input",d);let W=()=>rt(t.get("status")),V=()=>{h=t.get("selected"),S()};t.on("change:frequencies",v),t.on("change:cards",S),t.on("change:selected",V),t.on("change:status",W),t.on("change:matches",d);let it=at(S);return v(),S(),()=>{t.off("change:frequencies",v),t.off("change:cards",S),t.off("change:selected",V),t.off("change:status",W),t.off("change:matches",d),it()}}var zt={render:kt};export{zt as default,vt as featureOrder,wt as filterFeatures};
