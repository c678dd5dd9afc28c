var rt={float32:Float32Array,int32:Int32Array,uint8:Uint8Array,float16:Uint16Array},S=null;function ot(){if(S)return S;S=new Float32Array(65536);for(let t=0;t<65536;t++)S[t]=it(t);return S}function it(t){let n=t&32768?-1:1,e=t>>10&31,a=t&1023;return e===0?n*2**-14*(a/1024):e===31?a?NaN:n*(1/0):n*2**(e-15)*(1+a/1024)}function st(t){if(t instanceof DataView||ArrayBuffer.isView(t))return{buffer:t.buffer,byteOffset:t.byteOffset,byteLength:t.byteLength};if(t instanceof ArrayBuffer)return{buffer:t,byteOffset:0,byteLength:t.byteLength};throw new TypeError("binary array expected a DataView, TypedArray or ArrayBuffer as 'view'")}function A(t){if(t==null)return null;let{dtype:n,shape:e}=t,a=rt[n];if(!a)throw new TypeError(`unsupported dtype ${n}`);let{buffer:i,byteOffset:c,byteLength:l}=st(t.view),s=e.reduce((d,C)=>d*C,1);if(s*a.BYTES_PER_ELEMENT!==l)throw new RangeError(`${n} array of shape [${e}] needs ${s*a.BYTES_PER_ELEMENT} bytes, got ${l}`);let w=c%a.BYTES_PER_ELEMENT===0?new a(i,c,s):new a(i.slice(c,c+l));if(n!=="float16")return{data:w,shape:[...e],dtype:n};let b=ot(),y=new Float32Array(s);for(let d=0;d<s;d++)y[d]=b[w[d]];return{data:y,shape:[...e],dtype:n}}var W={sequential:["#440154","#482878","#3e4989","#31688e","#26828e","#1f9e89","#35b779","#6ece58","#b5de2b","#fde725"],diverging:["#2166ac","#4393c3","#92c5de","#d1e5f0","#f7f7f7","#fddbc7","#f4a582","#d6604d","#b2182b"],categorical:["#4e79a7","#f28e2b","#e15759","#76b7b2","#59a14f","#edc948","#b07aa1","#ff9da7","#9c755f","#17becf","#bcbd22","#1f3b73"]},O=new Map;function _(t){let n=parseInt(t.slice(1),16);return[n>>16&255,n>>8&255,n&255]}function ct(t){let n=String(t||"").trim(),e=/^#([0-9a-f]{3})$/i.exec(n);return e?[...e[1]].map(a=>parseInt(a+a,16)):(e=/^#([0-9a-f]{6})$/i.exec(n),e?_(n):(e=/^rgba?\(\s*(\d+)[,\s]+(\d+)[,\s]+(\d+)/i.exec(n),e?e.slice(1,4).map(Number):null))}function lt([t,n,e]){return .2126*t+.7152*n+.0722*e<128}var V=[["#92c5de","#4393c3","#2b5f8a"],["#9e3a2e","#d6604d","#f4a582"]];function Y(t,n=null){let e=t in W?t:"sequential",a=e==="diverging"?ct(n):null,i=a&&lt(a),c=i?`${e}:${a.join(",")}`:e;if(O.has(c))return O.get(c);let l=i?[...V[0].map(_),a,...V[1].map(_)]:W[e].map(_),s=new Uint8ClampedArray(256*3);for(let x=0;x<256;x++){let w=x/255*(l.length-1),b=Math.min(Math.floor(w),l.length-2),y=w-b;for(let d=0;d<3;d++)s[x*3+d]=Math.round(l[b][d]*(1-y)+l[b+1][d]*y)}return O.set(c,s),s}function H(t,n,e){let a=(t-n)/(e-n);return Math.max(0,Math.min(255,Math.round(a*255)))}function U(t,n){return`rgb(${t[n*3]}, ${t[n*3+1]}, ${t[n*3+2]})`}var G=`
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
.nm-tooltip .nm-tip-title { font-weight: 600; margin-bottom: 2px; white-space: normal; overflow-wrap: anywhere; }
.nm-tooltip table { border-collapse: collapse; }
.nm-tooltip td { padding: 0 6px 0 0; }
.nm-tooltip td.nm-num { text-align: right; }
.nm-token { font-family: var(--jp-code-font-family, var(--vscode-editor-font-family, ui-monospace, Menlo, Consolas, monospace)); }
.nm-attn-layout { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
.nm-attn-grid { max-height: 460px; overflow: auto; border: 1px solid var(--nm-border); border-radius: 3px; position: relative; }
.nm-attn-zoom { min-width: 200px; }
.nm-attn-zoom-title { font-weight: 600; margin-bottom: 4px; }
.nm-empty { color: var(--nm-muted); padding: 8px 0; }
`;function r(t,n={},e=[]){let a=document.createElement(t);for(let[i,c]of Object.entries(n))i==="className"?a.className=c:i==="text"?a.textContent=c:i==="style"?Object.assign(a.style,c):a.setAttribute(i,c);for(let i of e)a.append(i);return a}function K(t,n){let e=r("div",{className:`nm-root nm-${n}`});return e.append(r("style",{text:G})),t.append(e),e}var X=16384;function J(t,n,e){let a=Math.min(globalThis.devicePixelRatio||1,X/Math.max(1,n),X/Math.max(1,e));t.width=Math.max(1,Math.round(n*a)),t.height=Math.max(1,Math.round(e*a)),t.style.width=`${n}px`,t.style.height=`${e}px`;let i=t.getContext("2d");return i.setTransform(a,0,0,a,0,0),i}function z(t){let n=getComputedStyle(t),e=(a,i)=>{let c=n.getPropertyValue(a).trim();return c&&!c.startsWith("var(")?c:i};return{fg:e("--nm-fg","#1f1f1f"),muted:e("--nm-muted","#5f6368"),bg:e("--nm-bg","#ffffff"),border:e("--nm-border","#c8c8c8"),accent:e("--nm-accent","#1a73e8"),font:`11px ${n.fontFamily||"sans-serif"}`}}function Q(t,n=800){return t.clientWidth||t.parentElement?.clientWidth||n}function Z(t){let n=globalThis.matchMedia?.("(prefers-color-scheme: dark)");n?.addEventListener?.("change",t);let e=typeof MutationObserver>"u"?null:new MutationObserver(t);return e?.observe(document.body,{attributes:!0,attributeFilter:["class","data-jp-theme-name","data-jp-theme-light","style"]}),()=>{n?.removeEventListener?.("change",t),e?.disconnect()}}var ft=/^(\+)?(?:\.(\d+))?([fegd%])?$/;function u(t,n=""){if(t==null||Number.isNaN(t))return"–";if(!Number.isFinite(t))return t>0?"∞":"−∞";let e=ft.exec(n||"");if(!e)return String(t);let[,a,i,c="g"]=e,l=i===void 0?null:Number(i),s;switch(c){case"f":s=t.toFixed(l??6);break;case"e":s=t.toExponential(l??6).replace(/e([+-])(\d)$/,"e$10$2");break;case"%":s=`${(t*100).toFixed(l??6)}%`;break;case"d":s=Math.round(t).toString();break;default:s=String(Number(t.toPrecision(Math.max(1,l??4))))}return a&&t>=0?`+${s}`:s}var mt={" ":"␣","\n":"↵","	":"⇥","\r":"␍"};function P(t){return t===""?"∅":String(t).replace(/[ \n\t\r]/g,n=>mt[n])}var j=400,F=110,dt=`
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
`;function pt(t){let n=Array.from(t,(e,a)=>a);return n.sort((e,a)=>t[a]-t[e]||e-a),n}function ut(t,n,e){let a=n.trim();return a?/^\d+$/.test(a)?t.filter(i=>String(i).startsWith(a)):e||[]:t}function xt({model:t,el:n}){let e=K(n,"sae");e.append(r("style",{text:dt}));let a=r("div",{className:"nm-title"}),i=r("input",{type:"search",placeholder:"feature #, or a token / text + Enter"}),c=r("div",{className:"nm-sae-rows",role:"listbox"}),l=r("div",{className:"nm-sae-card"});e.append(a,r("div",{className:"nm-sae-layout"},[r("div",{className:"nm-sae-list"},[i,c]),l]));let s=new Float32Array(0),x=new Uint8Array(0),w=[],b=null;function y(){s=A(t.get("frequencies")).data,x=A(t.get("dead")).data,w=pt(s),a.textContent=t.get("title"),d()}function d(){let o=ut(w,i.value,i.value.trim()===t.get("query")?t.get("matches"):null),m=s.length?Math.max(...o.slice(0,1).map(f=>s[f]),1e-12):1,v=t.get("card")?.feature;c.replaceChildren(...o.slice(0,j).map(f=>{let p=r("div",{className:`nm-sae-row${x[f]?" nm-sae-dead":""}`,role:"option","data-feature":String(f),"aria-selected":String(f===v),title:x[f]?"dead feature":""},[r("span",{className:"nm-sae-id",text:`#${f}`}),r("span",{className:"nm-sae-bar",style:{flex:`0 0 ${Math.round(70*s[f]/m)}px`}}),r("span",{text:x[f]?"dead":`${u(100*s[f],".2f")}%`})]);return p.addEventListener("click",()=>C(f)),p})),o.length>j&&c.append(r("div",{className:"nm-sae-more",text:`${o.length-j} more: search to narrow`})),o.length||c.append(r("div",{className:"nm-sae-more",text:t.get("search_note")||"no feature matches"}))}function C(o){b=o,l.setAttribute("aria-busy","true"),t.send({type:"select",feature:o}),q(`feature ${o}: asking the kernel for its card...`)}function q(o){let m=l.querySelector(".nm-sae-status");m&&(m.textContent=o)}function B(o,m,v){let f=o.tokens.map((p,k)=>{let h=o.activations[k],N=r("span",{className:`nm-sae-tok nm-token${k===o.center?" nm-sae-center":""}`,text:P(p),title:u(h,".3f")});return h>0&&(N.style.background=U(v,H(h,-m,m))),N});return r("div",{className:"nm-sae-context"},[r("span",{className:"nm-sae-value",text:u(o.activation,".3f")}),...f])}function tt(o,m,v){let f=Math.min(520,Math.max(240,Q(l)-10)),p=J(o,f,F),k=z(e),h=m.length,N=Math.max(1,...m),M=F-18;p.fillStyle=k.accent;for(let $=0;$<h;$++){let E=M*m[$]/N;p.fillRect($*f/h+1,M-E,f/h-2,E)}p.font=k.font,p.fillStyle=k.muted,p.fillText(u(v[0],".3g"),0,F-4);let T=u(v[h],".3g");p.fillText(T,f-p.measureText(T).width,F-4)}function I(){let o=t.get("card");if(l.removeAttribute("aria-busy"),!o||o.feature===void 0){l.replaceChildren(r("div",{className:"nm-empty",text:"choose a feature on the left"}));return}b===o.feature&&(b=null);let m=z(e),v=Y("diverging",m.bg),f=o.max_activation||1,p=r("canvas",{className:"nm-sae-histogram"}),k=A(t.get("hist_counts")).data,h=A(t.get("hist_edges")).data,N=r("input",{type:"number",step:"any",value:String(t.get("steer_coef"))}),M=r("button",{text:"steer"}),T=r("button",{text:"ablate"}),$=t.get("can_act");for(let g of[M,T])g.disabled=!$;M.addEventListener("click",()=>t.send({type:"steer",feature:o.feature,coef:Number(N.value)})),T.addEventListener("click",()=>t.send({type:"ablate",feature:o.feature}));let E=(g,R)=>r("table",{},[r("tr",{},[r("td",{className:"nm-sae-section",text:R})]),...g.map(([nt,at])=>r("tr",{},[r("td",{className:"nm-token",text:P(nt)}),r("td",{className:"nm-num",text:u(at,"+.3f")})]))]),L=[r("div",{className:"nm-title",text:`Feature ${o.feature}${o.dead?" (dead)":""}`}),r("div",{className:"nm-readout",text:`fires on ${u(100*o.frequency,".3f")}% of held-out tokens · max activation ${u(o.max_activation,".3f")}`}),r("div",{className:"nm-sae-section",text:"Activation histogram (non-zero)"}),p,r("div",{className:"nm-sae-section",text:"Logit effects of the decoder direction"}),o.logits_note?r("div",{className:"nm-empty",text:o.logits_note}):r("div",{className:"nm-sae-logits"},[E(o.top_logits,"raises"),E(o.bottom_logits,"lowers")]),r("div",{className:"nm-sae-actions"},[r("span",{text:"coef"}),N,M,T]),r("div",{className:"nm-sae-status",text:t.get("status")}),r("div",{className:"nm-sae-section",text:"Top activations"}),...o.contexts.length?o.contexts.map(g=>B(g,f,v)):[r("div",{className:"nm-empty",text:"it never fires on the held-out texts"})]];for(let g of o.bands)L.push(r("div",{className:"nm-sae-section",text:`Interval ${u(g.low,".3g")} – ${u(g.high,".3g")} · ${u(100*g.share,".1f")}% of firings`})),L.push(...g.contexts.map(R=>B(R,f,v)));l.replaceChildren(...L),tt(p,k,h),d()}i.addEventListener("keydown",o=>{if(o.key!=="Enter")return;let m=i.value.trim();/^\d+$/.test(m)&&Number(m)<s.length?C(Number(m)):m&&t.send({type:"search",query:m})}),i.addEventListener("input",d);let D=()=>q(t.get("status"));t.on("change:frequencies",y),t.on("change:card",I),t.on("change:status",D),t.on("change:matches",d);let et=Z(I);return y(),I(),()=>{t.off("change:frequencies",y),t.off("change:card",I),t.off("change:status",D),t.off("change:matches",d),et()}}var $t={render:xt};export{$t as default,pt as featureOrder,ut as filterFeatures};
