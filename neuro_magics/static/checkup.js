var J={float32:Float32Array,int32:Int32Array,uint8:Uint8Array,float16:Uint16Array},w=null;function Q(){if(w)return w;w=new Float32Array(65536);for(let t=0;t<65536;t++)w[t]=Z(t);return w}function Z(t){let e=t&32768?-1:1,n=t>>10&31,r=t&1023;return n===0?e*2**-14*(r/1024):n===31?r?NaN:e*(1/0):e*2**(n-15)*(1+r/1024)}function tt(t){if(t instanceof DataView||ArrayBuffer.isView(t))return{buffer:t.buffer,byteOffset:t.byteOffset,byteLength:t.byteLength};if(t instanceof ArrayBuffer)return{buffer:t,byteOffset:0,byteLength:t.byteLength};throw new TypeError("binary array expected a DataView, TypedArray or ArrayBuffer as 'view'")}function P(t){if(t==null)return null;let{dtype:e,shape:n}=t,r=J[e];if(!r)throw new TypeError(`unsupported dtype ${e}`);let{buffer:o,byteOffset:a,byteLength:i}=tt(t.view),s=n.reduce((f,g)=>f*g,1);if(s*r.BYTES_PER_ELEMENT!==i)throw new RangeError(`${e} array of shape [${n}] needs ${s*r.BYTES_PER_ELEMENT} bytes, got ${i}`);let l=a%r.BYTES_PER_ELEMENT===0?new r(o,a,s):new r(o.slice(a,a+i));if(e!=="float16")return{data:l,shape:[...n],dtype:e};let u=Q(),d=new Float32Array(s);for(let f=0;f<s;f++)d[f]=u[l[f]];return{data:d,shape:[...n],dtype:e}}var F={sequential:["#440154","#482878","#3e4989","#31688e","#26828e","#1f9e89","#35b779","#6ece58","#b5de2b","#fde725"],diverging:["#2166ac","#4393c3","#92c5de","#d1e5f0","#f7f7f7","#fddbc7","#f4a582","#d6604d","#b2182b"],magnitude:["#fff7ec","#fee8c8","#fdd49e","#fdbb84","#fc8d59","#ef6548","#d7301f","#b30000","#7f0000"],categorical:["#4e79a7","#f28e2b","#e15759","#76b7b2","#59a14f","#edc948","#b07aa1","#ff9da7","#9c755f","#17becf","#bcbd22","#1f3b73"]},A=new Map;function M(t){let e=parseInt(t.slice(1),16);return[e>>16&255,e>>8&255,e&255]}function et(t){let e=String(t||"").trim(),n=/^#([0-9a-f]{3})$/i.exec(e);return n?[...n[1]].map(r=>parseInt(r+r,16)):(n=/^#([0-9a-f]{6})$/i.exec(e),n?M(e):(n=/^rgba?\(\s*(\d+)[,\s]+(\d+)[,\s]+(\d+)/i.exec(e),n?n.slice(1,4).map(Number):null))}function nt([t,e,n]){return .2126*t+.7152*e+.0722*n<128}var B=[["#92c5de","#4393c3","#2b5f8a"],["#9e3a2e","#d6604d","#f4a582"]],rt=["#5a1f0a","#a63603","#e6550d","#fd8d3c","#fdbe85"];function z(t,e=null){let n=t in F?t:"sequential",r=n==="diverging"||n==="magnitude"?et(e):null,o=r&&nt(r),a=o?`${n}:${r.join(",")}`:n;if(A.has(a))return A.get(a);let i=F[n].map(M);o&&n==="diverging"&&(i=[...B[0].map(M),r,...B[1].map(M)]),o&&n==="magnitude"&&(i=[r,...rt.map(M)]);let s=new Uint8ClampedArray(256*3);for(let c=0;c<256;c++){let l=c/255*(i.length-1),u=Math.min(Math.floor(l),i.length-2),d=l-u;for(let f=0;f<3;f++)s[c*3+f]=Math.round(i[u][f]*(1-d)+i[u+1][f]*d)}return A.set(a,s),s}function N(t,e){let n=1/0,r=-1/0;for(let a=0;a<t.length;a++){let i=t[a];i<n&&(n=i),i>r&&(r=i)}n===1/0&&(n=r=0);let o=!1;if(e.clip!=null&&e.scale!=="diverging"){let[a,i]=j(t,[1-e.clip,e.clip]);o=a>n||i<r,n=a,r=i}if(e.scale==="diverging"){let a=e.center??0,i=Math.max(Math.abs(n-a),Math.abs(r-a))||1;if(e.clip!=null){let s=Float64Array.from(t,l=>Math.abs(l-a)),c=j(s,[e.clip])[0];c>0&&c<i&&(i=c,o=!0)}n=a-i,r=a+i}return e.vmin!=null&&(n=e.vmin),e.vmax!=null&&(r=e.vmax),r===n&&(r=n+1),{lo:n,hi:r,clipped:o}}function j(t,e){let n=Float64Array.from(Array.prototype.filter.call(t,r=>Number.isFinite(r))).sort();return n.length?e.map(r=>{let o=r*(n.length-1),a=Math.floor(o),i=Math.min(n.length-1,a+1);return n[a]+(n[i]-n[a])*(o-a)}):e.map(()=>0)}function D(t,e,n){let r=(t-e)/(n-e);return Math.max(0,Math.min(255,Math.round(r*255)))}function O(t,e){return`rgb(${t[e*3]}, ${t[e*3+1]}, ${t[e*3+2]})`}var ot=/^(\+)?(?:\.(\d+))?([fegd%])?$/;function S(t,e=""){if(t==null||Number.isNaN(t))return"–";if(!Number.isFinite(t))return t>0?"∞":"−∞";let n=ot.exec(e||"");if(!n)return String(t);let[,r,o,a="g"]=n,i=o===void 0?null:Number(o),s;switch(a){case"f":s=t.toFixed(i??6);break;case"e":s=t.toExponential(i??6).replace(/e([+-])(\d)$/,"e$10$2");break;case"%":s=`${(t*100).toFixed(i??6)}%`;break;case"d":s=Math.round(t).toString();break;default:s=String(Number(t.toPrecision(Math.max(1,i??4))))}return r&&t>=0?`+${s}`:s}var q=`
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
`;function p(t,e={},n=[]){let r=document.createElement(t);for(let[o,a]of Object.entries(e))o==="className"?r.className=a:o==="text"?r.textContent=a:o==="style"?Object.assign(r.style,a):r.setAttribute(o,a);for(let o of n)r.append(o);return r}function G(t,e){let n=p("div",{className:`nm-root nm-${e}`});return n.append(p("style",{text:q})),t.append(n),n}var V=16384;function T(t,e,n){let r=Math.min(globalThis.devicePixelRatio||1,V/Math.max(1,e),V/Math.max(1,n));t.width=Math.max(1,Math.round(e*r)),t.height=Math.max(1,Math.round(n*r)),t.style.width=`${e}px`,t.style.height=`${n}px`;let o=t.getContext("2d");return o.setTransform(r,0,0,r,0,0),o}function C(t){let e=getComputedStyle(t),n=(r,o)=>{let a=e.getPropertyValue(r).trim();return a&&!a.startsWith("var(")?a:o};return{fg:n("--nm-fg","#1f1f1f"),muted:n("--nm-muted","#5f6368"),bg:n("--nm-bg","#ffffff"),border:n("--nm-border","#c8c8c8"),accent:n("--nm-accent","#1a73e8"),font:`11px ${e.fontFamily||"sans-serif"}`}}function E(t,e=800){return t.clientWidth||t.parentElement?.clientWidth||e}function W(t,e){let n=p("a",{href:t,download:e});document.body.append(n),n.click(),n.remove()}function at(t){return new Promise((e,n)=>{let r=new Image;r.onload=()=>{let o=document.createElement("canvas");o.width=r.width*2,o.height=r.height*2;let a=o.getContext("2d");a.scale(2,2),a.drawImage(r,0,0),e(o.toDataURL("image/png"))},r.onerror=()=>n(new Error("the SVG could not be rasterised")),r.src=`data:image/svg+xml;charset=utf-8,${encodeURIComponent(t)}`})}var it=["--nm-fg","--nm-muted","--nm-bg","--nm-panel","--nm-border","--nm-accent"];function U(t){let e=Math.ceil(t.scrollWidth||t.clientWidth||E(t)),n=Math.ceil(t.scrollHeight||t.clientHeight||400),r=t.cloneNode(!0),o=t.querySelectorAll("canvas");r.querySelectorAll("canvas").forEach((c,l)=>{let u=o[l],d="";try{d=u.toDataURL("image/png")||""}catch{d=""}c.replaceWith(p("img",{src:d,width:u.style.width||u.width,height:u.style.height||u.height}))}),r.querySelectorAll("button, input, select, .nm-tooltip, .nm-export").forEach(c=>c.remove());let a=getComputedStyle(t),i=it.map(c=>[c,a.getPropertyValue(c).trim()]).filter(([,c])=>c&&!c.startsWith("var("));r.setAttribute("style",`${r.getAttribute("style")||""};${i.map(([c,l])=>`${c}: ${l}`).join("; ")}; background: var(--nm-bg, #fff); padding: 6px;`);let s=new XMLSerializer().serializeToString(r);return`<svg xmlns="http://www.w3.org/2000/svg" width="${e+12}" height="${n+12}"><foreignObject x="0" y="0" width="100%" height="100%">${s}</foreignObject></svg>`}function Y(t,e){let n=p("button",{type:"button",text:"SVG",className:"nm-export-svg",title:"download this view as SVG"}),r=p("button",{type:"button",text:"PNG",className:"nm-export-png",title:"download this view as PNG"});return n.addEventListener("click",()=>W(`data:image/svg+xml;charset=utf-8,${encodeURIComponent(U(t))}`,`${e()}.svg`)),r.addEventListener("click",async()=>W(await at(U(t)),`${e()}.png`)),p("div",{className:"nm-export nm-toolbar"},[n,r])}var st=`
.nm-checkup .nm-finding { border-top: 1px solid var(--nm-border); padding: 4px 0; }
.nm-checkup .nm-finding-head { display: flex; gap: 8px; align-items: baseline; cursor: pointer; border-radius: 3px; padding: 2px 4px; }
.nm-checkup .nm-finding-head:hover { background: var(--nm-panel); box-shadow: inset 0 0 0 1px var(--nm-border); }
.nm-checkup .nm-finding-head:hover .nm-finding-title { text-decoration: underline; text-underline-offset: 3px; }
.nm-checkup .nm-finding-head:focus-visible { outline: 2px solid var(--nm-accent); }
.nm-checkup .nm-chevron { flex: none; width: 1em; color: var(--nm-muted); }
.nm-checkup .nm-finding-title { flex: 1 1 auto; }
.nm-checkup .nm-severity { flex: none; width: 5.2em; text-align: center; border-radius: 3px; padding: 0 4px;
  font-size: 11px; font-weight: 600; border: 1px solid transparent; }
.nm-checkup .nm-severity-high { background: #c62828; color: #ffffff; }
.nm-checkup .nm-severity-medium { background: #f9a825; color: #1f1f1f; }
.nm-checkup .nm-severity-info { background: transparent; color: #4f8fd6; border-color: #4f8fd6; }
.nm-checkup .nm-finding-head button { margin-top: 0; flex: none; }
.nm-checkup .nm-finding-body { display: none; padding: 4px 0 4px 7.6em; }
.nm-checkup .nm-finding.nm-open .nm-finding-body { display: block; }
.nm-checkup .nm-explanation { color: var(--nm-muted); margin-bottom: 4px; }
.nm-checkup button { font: inherit; color: var(--nm-fg); background: var(--nm-panel);
  border: 1px solid var(--nm-border); border-radius: 3px; padding: 1px 8px; margin-top: 4px; cursor: pointer; }
.nm-checkup button:disabled { cursor: default; opacity: 0.6; }
.nm-checkup .nm-status { color: var(--nm-muted); margin: 4px 0; min-height: 1.2em; }
`,lt={sink_mass:"attention to the first token (layer x head)",entropy:"attention entropy, nats (layer x head)",importance:"head importance |dL/d gate| (layer x head)",head_cosine:"cosine between heads' outputs in this layer (head x head)",resid_max:"max |h| in this dim per layer (log10), and 1000x the layer's median (line)",neuron_max:"max |activation| of each neuron in this layer (log10)",resid_norm:"mean residual norm per layer (first token left out)",block_influence:"Block Influence 1 - cos(x_in, x_out) per layer",lens_agreement:"logit lens top-1 agreement with the output per layer",alpha:"power-law alpha per block (rows) and matrix (columns)"};function ct(t,e,n=[]){let r=e[t.view];if(!r)return null;let{data:o,shape:a}=r;if(t.view==="head_cosine"){let[,i]=a,s=(t.layer??0)*i*i;return{kind:"grid",values:o.subarray(s,s+i*i),rows:i,cols:i,mark:{row:t.head,col:null}}}if(t.view==="resid_max"){let[i,s]=a,c=Float32Array.from({length:i},(d,f)=>Math.log10(Math.max(o[f*s+t.dim],1e-30))),l=e.resid_median?.data,u=l?Float32Array.from(l,d=>Math.log10(Math.max(1e3*d,100))):null;return{kind:"bars",values:c,mark:t.layer,line:u}}if(t.view==="neuron_max"){let[,i]=a,s=o.subarray(t.layer*i,(t.layer+1)*i);return{kind:"bars",values:Float32Array.from(s,c=>Math.log10(Math.max(c,1e-12))),mark:t.dim}}return a.length===2?{kind:"grid",values:o,rows:a[0],cols:a[1],mark:{row:t.layer,col:t.head},colLabels:t.view==="alpha"?n:null}:{kind:"bars",values:o,mark:t.layer}}function ft(t,e,n){let r=C(n),o=Math.max(6,Math.min(22,Math.floor(Math.min(560,E(n)-40)/e.cols))),a=28,i=4,s=a+o*e.cols+4,c=i+o*e.rows+16,l=T(t,s,c),u=z("sequential"),{lo:d,hi:f}=N(e.values,{});for(let m=0;m<e.rows;m++)for(let v=0;v<e.cols;v++){let y=e.values[m*e.cols+v];l.fillStyle=Number.isFinite(y)?O(u,D(y,d,f)):r.bg,l.fillRect(a+v*o,i+m*o,o,o)}l.strokeStyle=r.fg,l.lineWidth=2;let{row:g,col:x}=e.mark||{};g!=null&&x!=null?l.strokeRect(a+x*o,i+g*o,o,o):g!=null&&l.strokeRect(a,i+g*o,o*e.cols,o),l.fillStyle=r.muted,l.font=r.font,l.textAlign="right",l.textBaseline="middle";let h=Math.max(1,Math.ceil(12/o));for(let m=0;m<e.rows;m+=h)l.fillText(String(m),a-3,i+(m+.5)*o);l.textAlign="center",l.textBaseline="top";for(let m=0;m<e.cols;m+=h)l.fillText(String(m),a+(m+.5)*o,i+e.rows*o+2);return{lo:d,hi:f}}function mt(t,e,n){let r=C(n),o=e.values.length,a=Math.min(640,E(n)-40),i=120,s=T(t,a,i),{lo:c,hi:l}=N(e.values,{});if(e.line){let f=N(e.line,{});c=Math.min(c,f.lo),l=Math.max(l,f.hi)}c=Math.min(c,0);let u=f=>i-14-(f-c)/(l-c||1)*(i-20),d=(a-8)/o;for(let f=0;f<o;f++){let g=e.values[f];if(!Number.isFinite(g))continue;s.fillStyle=f===e.mark?r.fg:r.muted;let x=u(g);s.fillRect(4+f*d,Math.min(x,u(0)),Math.max(1,d-1),Math.abs(u(0)-x))}return e.line&&(s.strokeStyle=r.accent,s.beginPath(),e.line.forEach((f,g)=>(g?s.lineTo:s.moveTo).call(s,4+(g+.5)*d,u(f))),s.stroke()),s.fillStyle=r.muted,s.font=r.font,s.textBaseline="bottom",s.fillText(`0 … ${o-1}`,4,i),s.textAlign="right",s.fillText(`${S(c,".3g")} … ${S(l,".3g")}`,a-4,i),{lo:c,hi:l}}function dt({model:t,el:e}){let n=G(e,"checkup");n.append(p("style",{text:st}));let r=p("div",{className:"nm-title"}),o=p("div",{className:"nm-readout"}),a=p("div",{className:"nm-status"}),i=p("div",{className:"nm-findings"});n.append(Y(n,()=>"checkup"),r,o,a,i);let s=new Set;function c(){let d={};for(let[f,g]of Object.entries(t.get("arrays")||{}))d[f]=P(g);return d}function l(){let d=t.get("findings")||[],f=c(),g=t.get("actions_enabled");r.textContent=t.get("title")||"Checkup";let x={high:0,medium:0,info:0};for(let h of d)x[h.severity]=(x[h.severity]||0)+1;o.textContent=`${x.high} high · ${x.medium} medium · ${x.info} info`,i.replaceChildren(...d.map((h,m)=>{let v=p("div",{className:`nm-finding${s.has(m)?" nm-open":""}`,"data-index":String(m)}),y=p("div",{className:"nm-finding-head",role:"button",tabindex:"0","aria-expanded":String(s.has(m)),title:"show what it is and the view that shows it"},[p("span",{className:"nm-chevron",text:s.has(m)?"▾":"▸"}),p("span",{className:`nm-severity nm-severity-${h.severity}`,text:h.severity}),p("span",{className:"nm-finding-title",text:h.title})]),$=p("div",{className:"nm-finding-body"},[p("div",{className:"nm-explanation",text:h.explanation})]),_={done:!1},R=()=>{if(_.done)return;let b=ct(h,f,t.get("matrix_names")||[]);if(!b)return;_.done=!0;let k=p("canvas",{className:"nm-chart"}),I=p("div",{className:"nm-readout"});$.insertBefore(p("div",{},[I,k]),$.children[1]||null);let{lo:X,hi:H}=b.kind==="grid"?ft(k,b,n):mt(k,b,n);I.textContent=`${lt[h.view]||h.view} · ${S(X,".3g")} to ${S(H,".3g")}`};if(h.action){let b=p("button",{className:"nm-action",text:K(h.action)});g||(b.disabled=!0,b.title="actions run in a live notebook; this is a static copy"),b.addEventListener("click",k=>{k.stopPropagation(),a.textContent=`${h.title}: ${K(h.action)}: queued, the kernel runs it when it is free...`,t.send({type:"apply",index:m})}),b.addEventListener("keydown",k=>k.stopPropagation()),y.append(b)}let L=()=>{s.has(m)?s.delete(m):s.add(m),v.classList.toggle("nm-open",s.has(m)),y.setAttribute("aria-expanded",String(s.has(m))),y.querySelector(".nm-chevron").textContent=s.has(m)?"▾":"▸",s.has(m)&&R()};return y.addEventListener("click",L),y.addEventListener("keydown",b=>{(b.key==="Enter"||b.key===" ")&&(b.preventDefault(),L())}),v.append(y,$),s.has(m)&&queueMicrotask(R),v})),a.textContent=t.get("status")||""}let u=()=>{a.textContent=t.get("status")||""};return l(),t.on("change:findings",l),t.on("change:arrays",l),t.on("change:status",u),()=>{t.off("change:findings",l),t.off("change:arrays",l),t.off("change:status",u)}}function K(t){return t.kind==="massive"?`set to their ${t.mode} and diff`:t.kind==="ablate_heads"?"ablate this head and diff":t.kind==="ablate_neurons"?"ablate these neurons and diff":"apply and diff"}var $t={render:dt};export{K as actionLabel,$t as default,ct as viewData};
