"""Throws random parameters (wrong types, huge numbers, NUL, RTL marks, 5,000-character
strings, nested arrays...) at every built endpoint through the gateway and fails when any
answer is a 5xx, is not a JSON envelope, or the system stops being healthy.

    python3 scripts/fuzz-api.py --port 9015 --password <admin password> [--requests 6000]
"""
import argparse, json, random, sys, http.client, urllib.parse
ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, default=9015)
ap.add_argument("--phone", default="admin")
ap.add_argument("--password", required=True)
ap.add_argument("--requests", type=int, default=6000)
ap.add_argument("--seed", type=int, default=7)
args = ap.parse_args()
random.seed(args.seed)
failures = 0
def conn(): return http.client.HTTPConnection("127.0.0.1", args.port, timeout=10)
c=conn(); c.request("POST","/api/user/login",body=urllib.parse.urlencode({"phoneNumber": args.phone, "password": args.password}),headers={"Content-Type":"application/x-www-form-urlencoded"})
tok=json.loads(c.getresponse().read())["data"]["token"]
H={"Authorization":"Bearer "+tok}
paths=["/api/user/group", "/api/user/delgroup", "/api/user/user", "/api/user/deluser", "/api/user/menu", "/api/user/usermenu", "/api/user/password", "/api/customers/organization", "/api/customers/delorganization", "/api/customers/customers", "/api/customers/delcustomer", "/api/record/potential", "/api/record/delpotent", "/api/record/follow", "/api/record/delfollow", "/api/record/demand", "/api/record/deldemand", "/api/feedback/satisfy", "/api/feedback/delsatisfy", "/api/contract/contract", "/api/contract/delcontract"]
names=["group_id", "name", "content", "status", "user_id", "phoneNumber", "group_id", "role_id", "password", "sex", "birthday", "entryTime", "menu_id", "menu", "page", "count", "type", "group_ids", "organization_id", "groupName", "registerDate", "creator_id", "customer_id", "realName", "nickName", "isVip", "level", "organization_name", "vipDueTime", "old_password", "new_password", "number", "title", "openId", "potent_id", "protent_id", "director_id", "record_time", "follow_id", "customers_id", "follower_id", "event", "gain", "event_attach", "event_note", "demand_id", "demand_attach", "demand_note", "start_time", "end_time", "note", "satisfy_id", "attach", "value", "contract_id", "sign_time", "code", "amount", "remit_amount", "remit_time", "aging_start_time", "aging_end_time", "editor_id"]
vals=[None,True,False,0,-1,1,2,3,9223372036854775807,-9223372036854775808,1e308,1.5,"","  ","abc","1","-1","[1,2]","1,2,x","2020-02-30","2020-01-01 00:00:00","\u0000","\u202e张三","%_'\"--",[],[1,2,3],["a"],[[1]],{"a":1},"x"*5000,[0],[-5],"all","normal","1e3","112.555","NaN","-Infinity",10000000000000.01,-0.0,"0.10"]
statuses={}
for i in range(args.requests):
    p=random.choice(paths); m=random.choice(["GET","POST","POST"])
    params={random.choice(names):random.choice(vals) for _ in range(random.randint(0,6))}
    c=conn()
    try:
        if m=="GET":
            q=urllib.parse.urlencode({k:(json.dumps(v) if not isinstance(v,str) else v) for k,v in params.items()})
            c.request("GET",p+"?"+q,headers=H)
        else:
            if random.random()<0.5:
                c.request("POST",p,body=json.dumps(params),headers={**H,"Content-Type":"application/json"})
            else:
                q=urllib.parse.urlencode({k:(json.dumps(v) if not isinstance(v,str) else v) for k,v in params.items()})
                c.request("POST",p,body=q,headers={**H,"Content-Type":"application/x-www-form-urlencoded"})
        r=c.getresponse(); body=r.read()
        statuses[r.status]=statuses.get(r.status,0)+1
        j=json.loads(body)
        assert "status" in j, body
        if r.status>=500:
            failures += 1
            print("5xx", r.status, m, p, params, body[:200])
    except Exception as e:
        print("EXC", m, p, params, e); failures += 1; break
print(statuses)
c=conn(); c.request("GET","/healthz"); health=c.getresponse(); print(health.status, health.read().decode())
if health.status != 200: failures += 1
print("failures:", failures)
sys.exit(1 if failures else 0)
