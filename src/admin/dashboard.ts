/**
 * The dashboard page: one self-contained HTML file (no build step, no CDN)
 * that polls `/api/status` and draws sessions, mappings, upstreams and a
 * traffic graph. It only reads (GET, same origin); a control that POSTs must
 * send `Content-Type: application/json`, as `src/admin/admin_handler.ts`
 * refuses other POSTs.
 *
 * @module
 */
export const DASHBOARD_HTML = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>wmproxy</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2430}
header{background:#1d2430;color:#fff;padding:12px 20px;display:flex;gap:24px;align-items:baseline}
header h1{font-size:18px;margin:0}main{padding:16px 20px;display:grid;gap:16px}
section{background:#fff;border-radius:8px;padding:12px 16px;box-shadow:0 1px 2px #0002}
h2{font-size:15px;margin:0 0 8px}table{border-collapse:collapse;width:100%}
td,th{text-align:left;padding:4px 8px;border-bottom:1px solid #eee;font-variant-numeric:tabular-nums}
.ok{color:#137333}.bad{color:#b3261e}.muted{color:#667}canvas{width:100%;height:160px}
</style></head><body>
<header><h1>wmproxy</h1><span id="version" class="muted"></span><span id="uptime" class="muted"></span><span id="error" class="bad"></span></header>
<main>
<section><h2>Traffic</h2><canvas id="graph" width="900" height="160"></canvas><div id="rate" class="muted"></div></section>
<section><h2>Listeners</h2><table id="listeners"><thead><tr><th>component</th><th>address</th></tr></thead><tbody></tbody></table></section>
<section><h2>Tunnel sessions</h2><table id="sessions"><thead><tr><th>session</th><th>client</th><th>token</th><th>peer</th><th>since</th><th>RTT</th><th>streams</th><th>in</th><th>out</th></tr></thead><tbody></tbody></table></section>
<section><h2>Mappings</h2><table id="mappings"><thead><tr><th>claim</th><th>mapping</th><th>session</th></tr></thead><tbody></tbody></table></section>
<section><h2>Upstreams</h2><table id="upstreams"><thead><tr><th>group</th><th>server</th><th>state</th><th>active</th><th>fails</th></tr></thead><tbody></tbody></table></section>
</main>
<script>
const history = [];
let last = null;
function fmtBytes(n){const u=["B","KiB","MiB","GiB","TiB"];let i=0;while(n>=1024&&i<u.length-1){n/=1024;i++}return n.toFixed(i?1:0)+" "+u[i]}
function rows(id, items, cells){const tb=document.querySelector("#"+id+" tbody");tb.textContent="";
  if(items.length===0){const tr=tb.insertRow();const td=tr.insertCell();td.colSpan=9;td.className="muted";td.textContent="none";return}
  for(const it of items){const tr=tb.insertRow();for(const c of cells(it)){const td=tr.insertCell();
    if(c&&typeof c==="object"){td.textContent=c.text;td.className=c.cls}else td.textContent=String(c)}}}
function totalBytes(s){let n=0;if(s.proxy)n+=s.proxy.bytes_in+s.proxy.bytes_out;
  if(s.tunnel_server)for(const x of s.tunnel_server.sessions)n+=x.bytes_in+x.bytes_out;return n}
function draw(){const c=document.getElementById("graph"),g=c.getContext("2d");g.clearRect(0,0,c.width,c.height);
  const max=Math.max(1,...history);g.strokeStyle="#1a73e8";g.lineWidth=2;g.beginPath();
  history.forEach((v,i)=>{const x=i*(c.width/59),y=c.height-4-(v/max)*(c.height-8);i?g.lineTo(x,y):g.moveTo(x,y)});g.stroke()}
async function tick(){try{const r=await fetch("/api/status",{cache:"no-store",headers:{accept:"application/json"}});if(!r.ok)throw new Error("status "+r.status);
  const s=await r.json();document.getElementById("error").textContent="";
  document.getElementById("version").textContent="v"+s.version+" · pid "+s.pid;
  document.getElementById("uptime").textContent="up "+Math.round(s.uptime_s)+" s";
  const bytes=totalBytes(s),now=performance.now();
  if(last){const rate=(bytes-last.bytes)/((now-last.t)/1000);history.push(Math.max(0,rate));if(history.length>60)history.shift();
    document.getElementById("rate").textContent=fmtBytes(Math.max(0,rate))+"/s"}
  last={bytes,t:now};draw();
  rows("listeners",s.listeners,(l)=>[l.component,l.addr]);
  const ts=s.tunnel_server;
  rows("sessions",ts?ts.sessions:[],(x)=>[x.id,x.client??"",x.token,x.peer,new Date(x.since).toLocaleTimeString(),
    x.rtt_ms==null?"–":x.rtt_ms.toFixed(1)+" ms",x.streams,fmtBytes(x.bytes_in),fmtBytes(x.bytes_out)]);
  rows("mappings",ts?ts.mappings:[],(m)=>[m.key,m.mapping,m.session]);
  rows("upstreams",s.upstreams,(u)=>[u.group,u.addr+(u.backup?" (backup)":""),u.healthy?{text:"up",cls:"ok"}:{text:"down",cls:"bad"},u.active,u.fails]);
}catch(e){document.getElementById("error").textContent="cannot reach the API: "+e.message}}
tick();setInterval(tick,2000);
</script></body></html>
`;
