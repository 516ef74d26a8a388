#!/usr/bin/env python3
"""Clients for scripts/restart-chaos.sh: WORKERS threads create and list customers through the
gateway, a new connection per request, for SECONDS; then print requests, refused connections,
requests lost in flight, HTTP errors, the slowest answer, and how the acknowledged creates
compare with what is stored (listed, distinct, duplicated names).

usage: load-clients.py PORT SECONDS WORKERS TAG   (admin password in $PW)"""
import http.client, json, sys, threading, time, os
port=int(sys.argv[1]); secs=float(sys.argv[2]); workers=int(sys.argv[3]); tag=sys.argv[4]
def req(method,path,body=None,token=None,retry=False):
    for attempt in range(20 if retry else 1):
        try: return req1(method,path,body,token)
        except Exception:
            if not retry or attempt==19: raise
            time.sleep(0.5)
def req1(method,path,body=None,token=None):
    c=http.client.HTTPConnection("127.0.0.1",port,timeout=30)
    h={"Content-Type":"application/json"}
    if token: h["Authorization"]="Bearer "+token
    c.request(method,path,body=json.dumps(body) if body is not None else None,headers=h)
    r=c.getresponse(); d=r.read(); c.close(); return r.status,d
st,d=req("POST","/api/user/login",{"phoneNumber":"admin","password":os.environ.get("PW","pw12345678")})
tok=json.loads(d)["data"]["token"] if st==200 else None
if tok is None: print("login",st,d); sys.exit(1)
res=[];lock=threading.Lock();stop=time.time()+secs
def w(i):
    n=0
    while time.time()<stop:
        t0=time.time()
        try:
            if n%2==0: st,d=req("POST","/api/customers/customers",{"realName":f"{tag}-{i}-{n}"},tok)
            else: st,d=req("GET","/api/customers/customers?count=5&page=1",None,tok)
        except ConnectionRefusedError as e: st,d=-1,b"refused"
        except Exception as e: st,d=0,str(e).encode()
        with lock: res.append((st,time.time()-t0,d[:200] if st!=200 else b"", n%2==0))
        n+=1
ts=[threading.Thread(target=w,args=(i,)) for i in range(workers)]
[t.start() for t in ts];[t.join() for t in ts]
errs=[r for r in res if r[0]!=200]
print("requests",len(res),"errors",len(errs),"refused",sum(1 for r in res if r[0]==-1),"lost in flight",sum(1 for r in res if r[0]==0),"http errors",sum(1 for r in res if r[0]>0 and r[0]!=200),"slowest %.3f"%max(r[1] for r in res))
for e in [e for e in errs if e[0]!=0][:10]: print("error", e)
st,d=req("GET",f"/api/customers/customers?name={tag}&count=1&page=1",None,tok,True)
print("stored",json.loads(d)["page_info"]["total"], "acked creates", sum(1 for r in res if r[0]==200 and r[3]), "lost creates", sum(1 for r in res if r[0]==0 and r[3]))
names=[];page=1
while True:
    st,d=req("GET",f"/api/customers/customers?name={tag}&count=100&page={page}",None,tok,True)
    items=json.loads(d)["data"]; names+=[i["realName"] for i in items]
    if len(items)<100: break
    page+=1
import collections
dup=[n for n,c in collections.Counter(names).items() if c>1]
print("listed",len(names),"distinct",len(set(names)),"duplicated names",dup[:10])
