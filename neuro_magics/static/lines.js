var H={float32:Float32Array,int32:Int32Array,uint8:Uint8Array,float16:Uint16Array},T=null;function J(){if(T)return T;T=new Float32Array(65536);for(let t=0;t<65536;t++)T[t]=Q(t);return T}function Q(t){let e=t&32768?-1:1,n=t>>10&31,o=t&1023;return n===0?e*2**-14*(o/1024):n===31?o?NaN:e*(1/0):e*2**(n-15)*(1+o/1024)}function Z(t){if(!Number.isFinite(t))return t;let e=Math.abs(t);if(e>=65520)return Math.sign(t)*(1/0);let o=2**(Math.max(Math.floor(Math.log2(e||2**-24)),-14)-10),r=e/o,l=Math.round(r);return r-Math.floor(r)===.5&&l%2===1&&(l-=1),Math.sign(t)*l*o}function tt(t){if(t instanceof DataView||ArrayBuffer.isView(t))return{buffer:t.buffer,byteOffset:t.byteOffset,byteLength:t.byteLength};if(t instanceof ArrayBuffer)return{buffer:t,byteOffset:0,byteLength:t.byteLength};throw new TypeError("binary array expected a DataView, TypedArray or ArrayBuffer as 'view'")}function C(t){if(t==null)return null;let{dtype:e,shape:n}=t,o=H[e];if(!o)throw new TypeError(`unsupported dtype ${e}`);let{buffer:r,byteOffset:l,byteLength:c}=tt(t.view),i=n.reduce((b,S)=>b*S,1);if(i*o.BYTES_PER_ELEMENT!==c)throw new RangeError(`${e} array of shape [${n}] needs ${i*o.BYTES_PER_ELEMENT} bytes, got ${c}`);let d=l%o.BYTES_PER_ELEMENT===0?new o(r,l,i):new o(r.slice(l,l+c));if(e!=="float16")return{data:d,shape:[...n],dtype:e};let u=J(),y=new Float32Array(i);for(let b=0;b<i;b++)y[b]=u[d[b]];return{data:y,shape:[...n],dtype:e}}function I(t,e="float32"){if(Number.isNaN(t))return"NaN";if(!Number.isFinite(t))return t>0?"inf":"-inf";if(e==="int32"||e==="uint8")return String(t);let n=e==="float16"?Z:Math.fround,o=e==="float16"?5:9;for(let r=1;r<o;r++){let l=Number(t.toPrecision(r));if(n(l)===t)return String(l)}return String(Number(t.toPrecision(o)))}var et={sequential:["#440154","#482878","#3e4989","#31688e","#26828e","#1f9e89","#35b779","#6ece58","#b5de2b","#fde725"],diverging:["#2166ac","#4393c3","#92c5de","#d1e5f0","#f7f7f7","#fddbc7","#f4a582","#d6604d","#b2182b"],magnitude:["#fff7ec","#fee8c8","#fdd49e","#fdbb84","#fc8d59","#ef6548","#d7301f","#b30000","#7f0000"],categorical:["#4e79a7","#f28e2b","#e15759","#76b7b2","#59a14f","#edc948","#b07aa1","#ff9da7","#9c755f","#17becf","#bcbd22","#1f3b73"]};function nt(t){let e=parseInt(t.slice(1),16);return[e>>16&255,e>>8&255,e&255]}function $(t){let e=et.categorical;return nt(e[(t%e.length+e.length)%e.length])}var rt=/^(\+)?(?:\.(\d+))?([fegd%])?$/;function L(t,e=""){if(t==null||Number.isNaN(t))return"–";if(!Number.isFinite(t))return t>0?"∞":"−∞";let n=rt.exec(e||"");if(!n)return String(t);let[,o,r,l="g"]=n,c=r===void 0?null:Number(r),i;switch(l){case"f":i=t.toFixed(c??6);break;case"e":i=t.toExponential(c??6).replace(/e([+-])(\d)$/,"e$10$2");break;case"%":i=`${(t*100).toFixed(c??6)}%`;break;case"d":i=Math.round(t).toString();break;default:i=String(Number(t.toPrecision(Math.max(1,c??4))))}return o&&t>=0?`+${i}`:i}var P=`
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
`;function m(t,e={},n=[]){let o=document.createElement(t);for(let[r,l]of Object.entries(e))r==="className"?o.className=l:r==="text"?o.textContent=l:r==="style"?Object.assign(o.style,l):o.setAttribute(r,l);for(let r of n)o.append(r);return o}function F(t,e){let n=m("div",{className:`nm-root nm-${e}`});return n.append(m("style",{text:P})),t.append(n),n}var _=16384;function z(t,e,n){let o=Math.min(globalThis.devicePixelRatio||1,_/Math.max(1,e),_/Math.max(1,n));t.width=Math.max(1,Math.round(e*o)),t.height=Math.max(1,Math.round(n*o)),t.style.width=`${e}px`,t.style.height=`${n}px`;let r=t.getContext("2d");return r.setTransform(o,0,0,o,0,0),r}function D(t){let e=getComputedStyle(t),n=(o,r)=>{let l=e.getPropertyValue(o).trim();return l&&!l.startsWith("var(")?l:r};return{fg:n("--nm-fg","#1f1f1f"),muted:n("--nm-muted","#5f6368"),bg:n("--nm-bg","#ffffff"),border:n("--nm-border","#c8c8c8"),accent:n("--nm-accent","#1a73e8"),font:`11px ${e.fontFamily||"sans-serif"}`}}function X(t,e=800){return t.clientWidth||t.parentElement?.clientWidth||e}function O(t,e){if(typeof ResizeObserver>"u")return()=>{};let n=0,o=new ResizeObserver(r=>{let l=Math.round(r[0].contentRect.width);l!==0&&(cancelAnimationFrame(n),n=requestAnimationFrame(()=>e(l)))});return o.observe(t),()=>{cancelAnimationFrame(n),o.disconnect()}}function j(t){let e=globalThis.matchMedia?.("(prefers-color-scheme: dark)");e?.addEventListener?.("change",t);let n=typeof MutationObserver>"u"?null:new MutationObserver(t);return n?.observe(document.body,{attributes:!0,attributeFilter:["class","data-jp-theme-name","data-jp-theme-light","style"]}),()=>{e?.removeEventListener?.("change",t),n?.disconnect()}}function W(t,e,n,o){let r=e.getBoundingClientRect();t.style.display="block";let l=t.offsetWidth,c=t.offsetHeight,i=Math.min(r.width||1/0,(globalThis.innerWidth||1/0)-r.left),p=Math.min(r.height||1/0,(globalThis.innerHeight||1/0)-r.top),d=n-r.left+14,u=o-r.top+14;d+l>i&&(d=n-r.left-l-10),u+c>p&&(u=o-r.top-c-10),t.style.left=`${Math.max(0,Math.min(d,i-l))}px`,t.style.top=`${Math.max(0,Math.min(u,p-c))}px`}function A(t,e){let n=e.getBoundingClientRect(),o=parseFloat(e.style.width)||n.width,r=parseFloat(e.style.height)||n.height,l=n.width?o/n.width:1,c=n.height?r/n.height:1;return{x:(t.clientX-n.left)*l,y:(t.clientY-n.top)*c}}var k=260,B=720,s={left:48,right:12,top:10,bottom:34};function ot(t){let e=C(t.get("values")),[n,o]=e.shape;return{values:e,nSeries:n,nX:o,names:t.get("series")||[],xLabels:t.get("x_labels")||[],xTitle:t.get("x_title")||"",yTitle:t.get("y_title")||"",yRange:t.get("y_range")||[],dashed:t.get("dashed")||[],title:t.get("title")||""}}function at(t){if(t.yRange.length===2)return t.yRange;let e=1/0,n=-1/0;for(let r of t.values.data)r<e&&(e=r),r>n&&(n=r);if(e===1/0)return[0,1];let o=(n-e||Math.abs(n)||1)*.05;return[e-o,n+o]}function V(t,e,n){let o=e-s.left-s.right,r=Math.round((t-s.left)/o*Math.max(1,n-1));return Math.max(0,Math.min(n-1,r))}function it({model:t,el:e}){let n=F(e,"lines"),o=m("div",{className:"nm-title"}),r=m("canvas",{className:"nm-chart"}),l=m("div",{className:"nm-legend"}),c=m("div",{className:"nm-tooltip"});n.append(o,m("div",{className:"nm-stack"},[r]),l,c);let i=null,p=0,d=-1,u=a=>s.left+(p-s.left-s.right)*a/Math.max(1,i.nX-1);function y(){i=ot(t),o.textContent=i.title,l.replaceChildren(...i.names.map((a,g)=>{let[h,v,w]=$(g);return m("span",{className:"nm-mark-key"},[m("i",{style:{background:`rgb(${h}, ${v}, ${w})`,border:"none"}}),a])})),b()}function b(){p=Math.min(B,X(n));let a=z(r,p,k),g=D(n),[h,v]=at(i),w=f=>s.top+(k-s.top-s.bottom)*(1-(f-h)/(v-h||1));a.font=g.font,a.strokeStyle=g.border,a.strokeRect(s.left,s.top,p-s.left-s.right,k-s.top-s.bottom),a.fillStyle=g.muted;for(let f=0;f<=4;f++){let N=h+(v-h)*f/4;a.fillText(L(N,".3g"),4,w(N)+4)}let Y=Math.max(1,Math.ceil(i.nX*28/Math.max(1,p-s.left-s.right)));for(let f=0;f<i.nX;f+=Y)a.fillText(String(i.xLabels[f]??f),u(f)-6,k-s.bottom+14);a.fillText(i.xTitle,p/2-12,k-4),a.fillText(i.yTitle,s.left+6,s.top+14),d>=0&&(a.strokeStyle=g.muted,a.beginPath(),a.moveTo(u(d),s.top),a.lineTo(u(d),k-s.bottom),a.stroke());for(let f=0;f<i.nSeries;f++){let[N,G,K]=$(f);a.strokeStyle=a.fillStyle=`rgb(${N}, ${G}, ${K})`,a.setLineDash?.(i.dashed[f]?[5,4]:[]),a.lineWidth=2,a.beginPath();let E=!1;for(let x=0;x<i.nX;x++){let M=i.values.data[f*i.nX+x];if(!Number.isFinite(M)){E=!1;continue}E?a.lineTo(u(x),w(M)):a.moveTo(u(x),w(M)),E=!0}a.stroke(),a.setLineDash?.([]);for(let x=0;x<i.nX;x++){let M=i.values.data[f*i.nX+x];Number.isFinite(M)&&a.fillRect(u(x)-2,w(M)-2,4,4)}}a.lineWidth=1}function S(a){let g=i.names.map((h,v)=>m("tr",{},[m("td",{text:h}),m("td",{className:"nm-num",text:I(i.values.data[v*i.nX+a])})]));return[m("div",{className:"nm-tip-title",text:`${i.xTitle} ${i.xLabels[a]??a}`}),m("table",{},g)]}r.addEventListener("mousemove",a=>{let{x:g}=A(a,r),h=V(g,p,i.nX);h!==d&&(d=h,c.replaceChildren(...S(h)),b()),W(c,n,a.clientX,a.clientY)}),r.addEventListener("mouseleave",()=>{d=-1,c.style.display="none",b()}),r.addEventListener("click",a=>{t.set("selected",V(A(a,r).x,p,i.nX)),t.save_changes()});let R=["values","series","x_labels","x_title","y_title","y_range","dashed","title"];for(let a of R)t.on(`change:${a}`,y);let q=O(n,a=>{Math.min(B,a)!==p&&b()}),U=j(()=>b());return y(),()=>{for(let a of R)t.off(`change:${a}`,y);q(),U()}}var wt={render:it};export{V as columnAt,wt as default,ot as readLines,at as yLimits};
