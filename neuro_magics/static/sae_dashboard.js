var bt={float32:Float32Array,int32:Int32Array,uint8:Uint8Array,float16:Uint16Array},A=null;function yt(){if(A)return A;A=new Float32Array(65536);for(let t=0;t<65536;t++)A[t]=vt(t);return A}function vt(t){let n=t&32768?-1:1,e=t>>10&31,a=t&1023;return e===0?n*2**-14*(a/1024):e===31?a?NaN:n*(1/0):n*2**(e-15)*(1+a/1024)}function wt(t){if(t instanceof DataView||ArrayBuffer.isView(t))return{buffer:t.buffer,byteOffset:t.byteOffset,byteLength:t.byteLength};if(t instanceof ArrayBuffer)return{buffer:t,byteOffset:0,byteLength:t.byteLength};throw new TypeError("binary array expected a DataView, TypedArray or ArrayBuffer as 'view'")}function C(t){if(t==null)return null;let{dtype:n,shape:e}=t,a=bt[n];if(!a)throw new TypeError(`unsupported dtype ${n}`);let{buffer:o,byteOffset:i,byteLength:s}=wt(t.view),c=e.reduce((u,I)=>u*I,1);if(c*a.BYTES_PER_ELEMENT!==s)throw new RangeError(`${n} array of shape [${e}] needs ${c*a.BYTES_PER_ELEMENT} bytes, got ${s}`);let b=i%a.BYTES_PER_ELEMENT===0?new a(o,i,c):new a(o.slice(i,i+s));if(n!=="float16")return{data:b,shape:[...e],dtype:n};let g=yt(),x=new Float32Array(c);for(let u=0;u<c;u++)x[u]=g[b[u]];return{data:x,shape:[...e],dtype:n}}var Z={sequential:["#440154","#482878","#3e4989","#31688e","#26828e","#1f9e89","#35b779","#6ece58","#b5de2b","#fde725"],diverging:["#2166ac","#4393c3","#92c5de","#d1e5f0","#f7f7f7","#fddbc7","#f4a582","#d6604d","#b2182b"],magnitude:["#fff7ec","#fee8c8","#fdd49e","#fdbb84","#fc8d59","#ef6548","#d7301f","#b30000","#7f0000"],categorical:["#4e79a7","#f28e2b","#e15759","#76b7b2","#59a14f","#edc948","#b07aa1","#ff9da7","#9c755f","#17becf","#bcbd22","#1f3b73"]},B=new Map;function L(t){let n=parseInt(t.slice(1),16);return[n>>16&255,n>>8&255,n&255]}function kt(t){let n=String(t||"").trim(),e=/^#([0-9a-f]{3})$/i.exec(n);return e?[...e[1]].map(a=>parseInt(a+a,16)):(e=/^#([0-9a-f]{6})$/i.exec(n),e?L(n):(e=/^rgba?\(\s*(\d+)[,\s]+(\d+)[,\s]+(\d+)/i.exec(n),e?e.slice(1,4).map(Number):null))}function Nt([t,n,e]){return .2126*t+.7152*n+.0722*e<128}var tt=[["#92c5de","#4393c3","#2b5f8a"],["#9e3a2e","#d6604d","#f4a582"]],Mt=["#5a1f0a","#a63603","#e6550d","#fd8d3c","#fdbe85"];function et(t,n=null){let e=t in Z?t:"sequential",a=e==="diverging"||e==="magnitude"?kt(n):null,o=a&&Nt(a),i=o?`${e}:${a.join(",")}`:e;if(B.has(i))return B.get(i);let s=Z[e].map(L);o&&e==="diverging"&&(s=[...tt[0].map(L),a,...tt[1].map(L)]),o&&e==="magnitude"&&(s=[a,...Mt.map(L)]);let c=new Uint8ClampedArray(256*3);for(let d=0;d<256;d++){let b=d/255*(s.length-1),g=Math.min(Math.floor(b),s.length-2),x=b-g;for(let u=0;u<3;u++)c[d*3+u]=Math.round(s[g][u]*(1-x)+s[g+1][u]*x)}return B.set(i,c),c}function nt(t,n,e){let a=(t-n)/(e-n);return Math.max(0,Math.min(255,Math.round(a*255)))}function at(t,n){return`rgb(${t[n*3]}, ${t[n*3+1]}, ${t[n*3+2]})`}var $t=/^(\+)?(?:\.(\d+))?([fegd%])?$/;function M(t,n=""){if(t==null||Number.isNaN(t))return"–";if(!Number.isFinite(t))return t>0?"∞":"−∞";let e=$t.exec(n||"");if(!e)return String(t);let[,a,o,i="g"]=e,s=o===void 0?null:Number(o),c;switch(i){case"f":c=t.toFixed(s??6);break;case"e":c=t.toExponential(s??6).replace(/e([+-])(\d)$/,"e$10$2");break;case"%":c=`${(t*100).toFixed(s??6)}%`;break;case"d":c=Math.round(t).toString();break;default:c=String(Number(t.toPrecision(Math.max(1,s??4))))}return a&&t>=0?`+${c}`:c}var D="·";function V(t){let n=String(t??""),e=/[\n\r]/.test(n),a=/^[ \t]/.test(n),o=n.replace(/^[ \t]+/,"").replace(/\r?\n/g,"\\n").replace(/\r/g,"\\r").replace(/\t/g,"\\t");return n===""&&(o="∅"),{space:a,text:o,newline:e}}function rt(t){let{space:n,text:e}=V(t);return`${n?D:""}${e}`}function _(t){if(t==null||Number.isNaN(t))return"–";if(!Number.isFinite(t))return t>0?"∞":"−∞";let n=Math.abs(t);return n===0?"0":n>=999.5?Math.round(t).toLocaleString("en-US"):n<.001?t.toExponential(2).replace(/\.?0+e/,"e"):String(Number(t.toPrecision(3)))}var ot=`
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
`;function r(t,n={},e=[]){let a=document.createElement(t);for(let[o,i]of Object.entries(n))o==="className"?a.className=i:o==="text"?a.textContent=i:o==="style"?Object.assign(a.style,i):a.setAttribute(o,i);for(let o of e)a.append(o);return a}function lt(t,n){let e=r("div",{className:`nm-root nm-${n}`});return e.append(r("style",{text:ot})),t.append(e),e}var it=16384;function ft(t,n,e){let a=Math.min(globalThis.devicePixelRatio||1,it/Math.max(1,n),it/Math.max(1,e));t.width=Math.max(1,Math.round(n*a)),t.height=Math.max(1,Math.round(e*a)),t.style.width=`${n}px`,t.style.height=`${e}px`;let o=t.getContext("2d");return o.setTransform(a,0,0,a,0,0),o}function W(t){let n=getComputedStyle(t),e=(a,o)=>{let i=n.getPropertyValue(a).trim();return i&&!i.startsWith("var(")?i:o};return{fg:e("--nm-fg","#1f1f1f"),muted:e("--nm-muted","#5f6368"),bg:e("--nm-bg","#ffffff"),border:e("--nm-border","#c8c8c8"),accent:e("--nm-accent","#1a73e8"),font:`11px ${n.fontFamily||"sans-serif"}`}}function U(t,n=800){return t.clientWidth||t.parentElement?.clientWidth||n}function mt(t){let n=globalThis.matchMedia?.("(prefers-color-scheme: dark)");n?.addEventListener?.("change",t);let e=typeof MutationObserver>"u"?null:new MutationObserver(t);return e?.observe(document.body,{attributes:!0,attributeFilter:["class","data-jp-theme-name","data-jp-theme-light","style"]}),()=>{n?.removeEventListener?.("change",t),e?.disconnect()}}function dt(t,{running:n=!1,className:e="nm-token"}={}){let a=String(t??""),o=r("span",{className:e});if(n)return o.textContent=a.replace(/\r?\n/g,""),o.classList.add("nm-running"),/\n/.test(a)&&(o.textContent||o.append(r("span",{className:"nm-space",text:"⏎"})),o.append(r("br"))),o;let{space:i,text:s}=V(a);return i&&o.append(r("span",{className:"nm-space",text:D})),o.append(s),o}function st(t,n){let e=r("a",{href:t,download:n});document.body.append(e),e.click(),e.remove()}function St(t){return new Promise((n,e)=>{let a=new Image;a.onload=()=>{let o=document.createElement("canvas");o.width=a.width*2,o.height=a.height*2;let i=o.getContext("2d");i.scale(2,2),i.drawImage(a,0,0),n(o.toDataURL("image/png"))},a.onerror=()=>e(new Error("the SVG could not be rasterised")),a.src=`data:image/svg+xml;charset=utf-8,${encodeURIComponent(t)}`})}var Et=["--nm-fg","--nm-muted","--nm-bg","--nm-panel","--nm-border","--nm-accent"];function ct(t){let n=Math.ceil(t.scrollWidth||t.clientWidth||U(t)),e=Math.ceil(t.scrollHeight||t.clientHeight||400),a=t.cloneNode(!0),o=t.querySelectorAll("canvas");a.querySelectorAll("canvas").forEach((d,b)=>{let g=o[b],x="";try{x=g.toDataURL("image/png")||""}catch{x=""}d.replaceWith(r("img",{src:x,width:g.style.width||g.width,height:g.style.height||g.height}))}),a.querySelectorAll("button, input, select, .nm-tooltip, .nm-export").forEach(d=>d.remove());let i=getComputedStyle(t),s=Et.map(d=>[d,i.getPropertyValue(d).trim()]).filter(([,d])=>d&&!d.startsWith("var("));a.setAttribute("style",`${a.getAttribute("style")||""};${s.map(([d,b])=>`${d}: ${b}`).join("; ")}; background: var(--nm-bg, #fff); padding: 6px;`);let c=new XMLSerializer().serializeToString(a);return`<svg xmlns="http://www.w3.org/2000/svg" width="${n+12}" height="${e+12}"><foreignObject x="0" y="0" width="100%" height="100%">${c}</foreignObject></svg>`}function pt(t,n){let e=r("button",{type:"button",text:"SVG",className:"nm-export-svg",title:"download this view as SVG"}),a=r("button",{type:"button",text:"PNG",className:"nm-export-png",title:"download this view as PNG"});return e.addEventListener("click",()=>st(`data:image/svg+xml;charset=utf-8,${encodeURIComponent(ct(t))}`,`${n()}.svg`)),a.addEventListener("click",async()=>st(await St(ct(t)),`${n()}.png`)),r("div",{className:"nm-export nm-toolbar"},[e,a])}var G=400,F=110,Tt=`
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
`;function At(t){let n=Array.from(t,(e,a)=>a);return n.sort((e,a)=>t[a]-t[e]||e-a),n}function Ct(t,n,e){let a=n.trim();return a?/^\d+$/.test(a)?t.filter(o=>String(o).startsWith(a)):e||[]:t}function Lt(t,n,e){let a=t.trim();return/^\d+$/.test(a)?`no feature number starts with ${a}`:a&&a===n?e||`no feature fires on “${a}”`:"press Enter to search the features for this token or text"}function It({model:t,el:n}){let e=lt(n,"sae");e.append(r("style",{text:Tt}));let a=r("div",{className:"nm-title"}),o=r("input",{type:"search",placeholder:"feature #, or a token / text + Enter"}),i=r("div",{className:"nm-sae-rows",role:"listbox"}),s=r("div",{className:"nm-sae-card"});e.append(pt(e,()=>"sae-dashboard"),a,r("div",{className:"nm-sae-layout"},[r("div",{className:"nm-sae-list"},[o,i]),s]));let c=new Float32Array(0),d=new Uint8Array(0),b=[],g=t.get("selected");function x(){c=C(t.get("frequencies")).data,d=C(t.get("dead")).data,b=At(c),a.textContent=t.get("title"),u()}function u(){let m=Ct(b,o.value,o.value.trim()===t.get("query")?t.get("matches"):null),f=c.length?Math.max(...m.slice(0,1).map(p=>c[p]),1e-12):1,l=g;i.replaceChildren(...m.slice(0,G).map(p=>{let h=r("div",{className:`nm-sae-row${d[p]?" nm-sae-dead":""}`,role:"option","data-feature":String(p),"aria-selected":String(p===l),title:d[p]?"dead feature":""},[r("span",{className:"nm-sae-id",text:`#${p}`}),r("span",{className:"nm-sae-bar",style:{flex:`0 0 ${Math.round(70*c[p]/f)}px`}}),r("span",{text:d[p]?"dead":`${M(100*c[p],".2f")}%`})]);return h.addEventListener("click",()=>I(p)),h})),m.length>G&&i.append(r("div",{className:"nm-sae-more",text:`${m.length-G} more: search to narrow`})),m.length||i.append(r("div",{className:"nm-sae-more",text:Lt(o.value,t.get("query"),t.get("search_note"))}))}function I(m){g=m,S(),t.send({type:"select",feature:m})}function H(m){let f=s.querySelector(".nm-sae-status");f&&(f.textContent=m)}function P(m,f){H(f),t.send(m)}function Y(m,f,l){let p=m.tokens.map((h,w)=>{let v=m.activations[w],k=dt(h,{running:!0,className:`nm-sae-tok nm-token${w===m.center?" nm-sae-center":""}`});if(k.title=_(v),v>0){let N=nt(v,0,f);k.style.background=at(l,N),k.style.color=.299*l[N*3]+.587*l[N*3+1]+.114*l[N*3+2]<150?"#ffffff":"#111111"}return k});return r("div",{className:"nm-sae-context"},[r("span",{className:"nm-sae-value",text:_(m.activation)}),...p])}function ut(m,f,l){let p=Math.min(520,Math.max(240,U(s)-10)),h=ft(m,p,F),w=W(e),v=f.length,k=Math.max(1,...f),N=F-18;h.fillStyle=w.accent;for(let E=0;E<v;E++){let R=N*f[E]/k;h.fillRect(E*p/v+1,N-R,p/v-2,R)}h.font=w.font,h.fillStyle=w.muted,h.fillText(M(l[0],".3g"),0,F-4);let $=M(l[v],".3g");h.fillText($,p-h.measureText($).width,F-4)}function S(){let m=t.get("cards")||[],f=m.findIndex(y=>y.feature===g),l=m[f];if(!l){s.setAttribute("aria-busy","true"),s.replaceChildren(r("div",{className:"nm-title",text:`Feature ${g}`}),r("div",{className:"nm-empty",text:"asking the kernel for this card... (a saved notebook has only the most frequent features' cards)"}),r("div",{className:"nm-sae-status",text:t.get("status")})),u();return}s.removeAttribute("aria-busy");let p=W(e),h=et("magnitude",p.bg),w=l.max_activation||1,v=r("canvas",{className:"nm-sae-histogram"}),k=C(t.get("hist_counts")),N=C(t.get("hist_edges")),$=k.shape[1],E=k.data.subarray(f*$,(f+1)*$),R=N.data.subarray(f*($+1),(f+1)*($+1)),q=r("input",{type:"number",step:"any",value:String(t.get("steer_coef"))}),z=r("button",{text:"steer"}),O=r("button",{text:"ablate"}),ht=t.get("can_act");for(let y of[z,O])y.disabled=!ht;z.addEventListener("click",()=>P({type:"steer",feature:l.feature,coef:Number(q.value)},`steer by feature ${l.feature} (coef ${q.value}): queued, the kernel runs it when it is free...`)),O.addEventListener("click",()=>P({type:"ablate",feature:l.feature},`ablate feature ${l.feature}: queued, the kernel runs it when it is free...`));let J=(y,T)=>r("table",{},[r("tr",{},[r("td",{className:"nm-sae-section",text:T})]),...y.map(([xt,Q])=>r("tr",{},[r("td",{className:"nm-token",text:rt(xt)}),r("td",{className:"nm-num",text:`${Q>0?"+":""}${_(Q)}`})]))]),j=[r("div",{className:"nm-title",text:`Feature ${l.feature}${l.dead?" (dead)":""}`}),r("div",{className:"nm-readout",text:`fires on ${M(100*l.frequency,".3f")}% of held-out tokens · max activation ${M(l.max_activation,".3f")}`}),r("div",{className:"nm-sae-section",text:"Activation histogram (non-zero)"}),v,r("div",{className:"nm-sae-section",text:"Logit effects of the decoder direction"}),l.logits_note?r("div",{className:"nm-empty",text:l.logits_note}):r("div",{className:"nm-sae-logits"},[J(l.top_logits,"raises"),J(l.bottom_logits,"lowers")]),r("div",{className:"nm-sae-actions"},[r("span",{text:"coef"}),q,z,O]),r("div",{className:"nm-sae-status",text:t.get("status")}),r("div",{className:"nm-sae-section",text:"Top activations"}),...l.contexts.length?l.contexts.map(y=>Y(y,w,h)):[r("div",{className:"nm-empty",text:"it never fires on the held-out texts"})]];for(let y of l.bands.filter(T=>T.contexts.length))j.push(r("div",{className:"nm-sae-section",text:`Interval ${M(y.low,".3g")} – ${M(y.high,".3g")} · ${M(100*y.share,".1f")}% of firings`})),j.push(...y.contexts.map(T=>Y(T,w,h)));s.replaceChildren(...j),ut(v,E,R),u()}o.addEventListener("keydown",m=>{if(m.key!=="Enter")return;let f=o.value.trim();/^\d+$/.test(f)&&Number(f)<c.length?I(Number(f)):f&&(i.replaceChildren(r("div",{className:"nm-sae-more",text:`searching for “${f}”: queued, the kernel answers when it is free...`})),P({type:"search",query:f},`searching for “${f}”...`))}),o.addEventListener("input",u);let K=()=>H(t.get("status")),X=()=>{g=t.get("selected"),S()};t.on("change:frequencies",x),t.on("change:cards",S),t.on("change:selected",X),t.on("change:status",K),t.on("change:matches",u);let gt=mt(S);return x(),S(),()=>{t.off("change:frequencies",x),t.off("change:cards",S),t.off("change:selected",X),t.off("change:status",K),t.off("change:matches",u),gt()}}var Ut={render:It};export{Ut as default,Lt as emptyListNote,At as featureOrder,Ct as filterFeatures};
