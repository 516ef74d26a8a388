#!/usr/bin/env python3
"""Seeds the CRM with organizations and customers through the HTTP API, for the benchmark.

    scripts/bench/seed.py --port 9015 --token TOKEN [--organizations 1000] [--customers 10000] [--contracts 0]

Python 3 standard library only. Several threads (--connections, default 16), each with its own
keep-alive `http.client` connection, POST to

    /api/customers/organization   {"groupName", "provience", "city", "address", "legal_person"}
    /api/customers/customers      {"realName", "nickName", "phoneNumber", "organization_id": [..]}

and, with --contracts N, N contracts to

    /api/contract/contract        {"organization_id", "name", "code", "amount", "sign_time", "follower_id": [1], ...}

signed at random times over the last 540 days (so about two thirds fall in the list's default
one-year window), with amounts up to 1,000,000.00 as two-decimal strings, half of them remitted.

Names are generated from a fixed random seed (--random-seed), so two runs with the same sizes
create the same data. Customers get a Chinese realName (a surname from ~100 common ones, weighted
roughly like real frequencies, plus one or two of ~200 given-name characters) and a nickName
derived from its pinyin ("zhangwei", "Wei Zhang", "zhangwei1988", "Kevin Zhang", "zw_520", ...),
and are linked to one or two random organizations.

After seeding, it picks a 4-letter search term: a piece of some nickName (starting at a pinyin
syllable) whose share of matching customers (case-insensitive substring of realName or nickName,
as the service searches) is closest to --search-share (default 1 %). It prints the term and how
many seeded customers it matches; with --env FILE it also writes shell assignments

    SEED_SEARCH_TERM=... SEED_SEARCH_MATCHES=... SEED_CUSTOMERS=... SEED_ORGANIZATION_ID=... SEED_CONTRACTS=...

(--customers 0 seeds no customers and picks no search term.)

for scripts/bench.sh. Any answer other than HTTP 200 with "status":0, or any connection error,
stops the seeding with a message and exit status 1.
"""

import argparse
import http.client
import json
import random
import sys
import threading
import time
from collections import Counter

# ---------------------------------------------------------------------------------------------
# Name material
# ---------------------------------------------------------------------------------------------

# ~100 common surnames, most common first, with their pinyin.
SURNAMES = """
王wang 李li 张zhang 刘liu 陈chen 杨yang 黄huang 赵zhao 吴wu 周zhou 徐xu 孙sun 马ma 朱zhu 胡hu
郭guo 何he 高gao 林lin 罗luo 郑zheng 梁liang 谢xie 宋song 唐tang 许xu 韩han 冯feng 邓deng 曹cao
彭peng 曾zeng 肖xiao 田tian 董dong 袁yuan 潘pan 于yu 蒋jiang 蔡cai 余yu 杜du 叶ye 程cheng 苏su
魏wei 吕lv 丁ding 任ren 沈shen 姚yao 卢lu 姜jiang 崔cui 钟zhong 谭tan 陆lu 汪wang 范fan 金jin
石shi 廖liao 贾jia 夏xia 韦wei 付fu 方fang 白bai 邹zou 孟meng 熊xiong 秦qin 邱qiu 江jiang 尹yin
薛xue 闫yan 段duan 雷lei 侯hou 龙long 史shi 陶tao 黎li 贺he 顾gu 毛mao 郝hao 龚gong 邵shao
万wan 钱qian 严yan 覃qin 武wu 戴dai 莫mo 孔kong 向xiang 汤tang
"""

# ~200 characters common in given names, with their pinyin.
GIVEN = """
伟wei 芳fang 娜na 敏min 静jing 丽li 强qiang 磊lei 军jun 洋yang 勇yong 艳yan 杰jie 娟juan 涛tao
明ming 超chao 秀xiu 霞xia 平ping 刚gang 桂gui 英ying 华hua 玉yu 萍ping 红hong 兰lan 文wen 辉hui
建jian 国guo 志zhi 海hai 波bo 鹏peng 飞fei 宇yu 浩hao 凯kai 健jian 俊jun 帆fan 帅shuai 旭xu
宁ning 斌bin 晨chen 博bo 婷ting 雪xue 琳lin 慧hui 佳jia 欣xin 莉li 倩qian 颖ying 晶jing 丹dan
蕾lei 璐lu 瑶yao 怡yi 雯wen 洁jie 琴qin 云yun 梅mei 燕yan 玲ling 凤feng 莹ying 晓xiao 小xiao
春chun 秋qiu 冬dong 嘉jia 子zi 梓zi 涵han 轩xuan 睿rui 泽ze 思si 雨yu 欢huan 乐le 诗shi
语yu 可ke 馨xin 一yi 诺nuo 依yi 安an 若ruo 梦meng 紫zi 彤tong 然ran 天tian 佑you 铭ming
昊hao 宏hong 振zhen 东dong 南nan 成cheng 德de 福fu 生sheng 祥xiang 才cai 发fa 新xin 利li
清qing 彬bin 富fu 顺shun 信xin 晗han 瑞rui 琪qi 璇xuan 菲fei 薇wei 妍yan 茜qian 露lu 岚lan
悦yue 蓉rong 婧jing 媛yuan 娇jiao 青qing 芬fen 珍zhen 莲lian 菊ju 月yue 霖lin 峰feng 毅yi
坤kun 鑫xin 森sen 淼miao 朋peng 亮liang 晖hui 立li 正zheng 永yong 光guang 荣rong 兴xing 良liang
山shan 仁ren 义yi 智zhi 忠zhong 全quan 胜sheng 君jun 楠nan 柏bai 松song 桐tong 航hang 远yuan
达da 宾bin 锋feng 鸿hong 家jia 启qi 和he 泰tai 维wei 卫wei 彦yan 哲zhe 翔xiang 逸yi 晴qing
朗lang 宸chen 皓hao 奕yi 辰chen 昕xin 钰yu 琦qi 瑾jin 萱xuan 蕊rui 菁jing 婉wan 淑shu 惠hui
贤xian 雅ya 芸yun 芝zhi 茹ru 艺yi 舒shu 曼man 美mei 凡fan 益yi 康kang 庆qing 喜xi 宝bao
民min 根gen 继ji 金jin 银yin 双shuang 玮wei 琛chen 煜yu 骏jun
"""

ENGLISH = """Kevin Lucy Jack Amy Tony Linda David Grace Eric Cindy Jason Helen Frank Vivian Leo Sunny
Tom Coco Alex Ivy Peter Lily Sam Nancy Ken Rose Ben Judy Henry Emma Vincent Alice Steven Wendy
Andy Mia Ryan Joyce Oscar Anna""".split()

PROVINCES = {
    "北京市": ["北京"], "上海市": ["上海"], "天津市": ["天津"], "重庆市": ["重庆"],
    "广东省": ["广州", "深圳", "东莞", "佛山", "珠海"], "浙江省": ["杭州", "宁波", "温州", "嘉兴", "绍兴"],
    "江苏省": ["南京", "苏州", "无锡", "常州", "南通"], "山东省": ["济南", "青岛", "烟台", "潍坊"],
    "四川省": ["成都", "绵阳", "德阳"], "湖北省": ["武汉", "宜昌", "襄阳"], "湖南省": ["长沙", "株洲", "岳阳"],
    "福建省": ["福州", "厦门", "泉州"], "河南省": ["郑州", "洛阳", "开封"], "河北省": ["石家庄", "保定", "唐山"],
    "安徽省": ["合肥", "芜湖"], "陕西省": ["西安", "宝鸡"], "辽宁省": ["沈阳", "大连"], "云南省": ["昆明", "大理"],
}
ORG_WORDS = list("华瑞恒信鑫盛泰达宏远金辉锦新创博智联源丰通安嘉腾骏祥和益德汇诚凯星海天正")
INDUSTRIES = ["科技", "贸易", "电子", "建材", "物流", "食品", "医药", "机械", "网络", "文化传媒", "教育咨询",
              "环保", "服装", "家居", "汽车服务", "信息技术", "生物科技", "餐饮管理", "装饰工程", "农业发展"]
SUFFIXES = ["有限公司", "有限公司", "有限公司", "股份有限公司", "有限责任公司", "集团有限公司", "工作室", "商行"]
STREETS = ["人民路", "中山路", "解放路", "建设路", "和平路", "长江路", "科技园路", "新华街", "朝阳大道", "滨江路"]


def parse_pairs(text):
    pairs, seen = [], set()
    for token in text.split():
        char, pinyin = token[0], token[1:]
        if char not in seen:
            seen.add(char)
            pairs.append((char, pinyin))
    return pairs


SURNAME_PAIRS = parse_pairs(SURNAMES)
GIVEN_PAIRS = parse_pairs(GIVEN)
# Real surname frequencies fall off steeply (王, 李, 张 are about 7 % each); 1/rank^0.9 is close
# enough for data that should not be uniform.
SURNAME_WEIGHTS = [1 / (rank + 1) ** 0.9 for rank in range(len(SURNAME_PAIRS))]


def customer_names(rng):
    """One customer's realName, nickName and the offsets in nickName where a pinyin syllable starts."""
    surname, s_py = rng.choices(SURNAME_PAIRS, SURNAME_WEIGHTS)[0]
    given = rng.sample(GIVEN_PAIRS, 1 if rng.random() < 0.3 else 2)   # 2- or 3-character names
    real = surname + "".join(c for c, _ in given)
    g_py = [p for _, p in given]
    style = rng.random()
    if style < 0.40:                         # zhangwei / zhangxiaoming
        parts, sep = [s_py] + g_py, ""
        nick = sep.join(parts)
    elif style < 0.60:                       # zhangwei1988, zhangwei88
        parts, sep = [s_py] + g_py, ""
        nick = "".join(parts) + str(rng.choice([rng.randint(1970, 2005), rng.randint(1, 999)]))
    elif style < 0.75:                       # Wei Zhang / Xiaoming Zhang
        first = "".join(g_py).capitalize()
        parts, sep = [first, s_py.capitalize()], " "
        nick = first + " " + s_py.capitalize()
    elif style < 0.88:                       # Kevin Zhang / kevin_zhang
        english = rng.choice(ENGLISH)
        if rng.random() < 0.5:
            parts, sep = [english, s_py.capitalize()], " "
        else:
            parts, sep = [english.lower(), s_py], "_"
        nick = sep.join(parts)
    else:                                    # zw_520 / zxm1990: initials, no syllables to search
        nick = s_py[0] + "".join(p[0] for p in g_py) + rng.choice(["_", ""]) + str(rng.randint(1, 2005))
        return real, nick, []
    starts, pos = [], 0
    for part in parts:
        starts.append(pos)
        pos += len(part) + len(sep)
    if sep == "":                            # syllable starts inside a run such as "zhangwei"
        starts, pos = [], 0
        for part in ([s_py] + g_py):
            starts.append(pos)
            pos += len(part)
    return real, nick, starts


def phone_numbers(rng, n):
    prefixes = ["130", "131", "132", "135", "136", "137", "138", "139", "150", "151", "152", "157", "158",
                "159", "166", "176", "177", "180", "181", "182", "183", "186", "187", "188", "189", "199"]
    seen = set()
    while len(seen) < n:
        seen.add(rng.choice(prefixes) + "%08d" % rng.randrange(100_000_000))
    result = sorted(seen)
    rng.shuffle(result)
    return result


def organization(rng, i):
    province = rng.choice(list(PROVINCES))
    city = rng.choice(PROVINCES[province])
    surname = rng.choices(SURNAME_PAIRS, SURNAME_WEIGHTS)[0][0]
    name = city + "".join(rng.sample(ORG_WORDS, 2)) + rng.choice(INDUSTRIES) + rng.choice(SUFFIXES)
    if i % 7 == 0:                           # a few branches, so some names repeat with a suffix
        name += rng.choice(["（%s分公司）" % rng.choice(["华东", "华南", "华北", "西南"]), " %d号店" % (i % 40 + 1)])
    return {
        "groupName": name,
        "provience": province,
        "city": city,
        "address": "%s%s%d号" % (city, rng.choice(STREETS), rng.randint(1, 999)),
        "legal_person": surname + "".join(c for c, _ in rng.sample(GIVEN_PAIRS, 2)),
    }


# ---------------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------------

class SeedError(Exception):
    pass


def post_all(port, token, path, bodies, connections):
    """POSTs every body, `connections` at a time; returns the created ids in the order of `bodies`."""
    ids = [None] * len(bodies)
    next_index = iter(range(len(bodies)))
    lock = threading.Lock()
    failure = []
    headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json",
               "Connection": "keep-alive"}

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            while not failure:
                with lock:
                    i = next(next_index, None)
                if i is None:
                    return
                body = json.dumps(bodies[i], ensure_ascii=False).encode()
                try:
                    conn.request("POST", path, body, headers)
                    response = conn.getresponse()
                    raw = response.read()
                except (OSError, http.client.HTTPException) as error:
                    raise SeedError("POST %s (item %d): connection error: %r" % (path, i, error))
                text = raw.decode("utf-8", "replace")
                if response.status != 200:
                    raise SeedError("POST %s (item %d) answered HTTP %d: %s\nbody sent: %s"
                                    % (path, i, response.status, text[:500], body.decode()))
                try:
                    answer = json.loads(text)
                    if answer.get("status") != 0:
                        raise ValueError("status is not 0")
                    ids[i] = int(answer["data"]["id"])
                except (ValueError, KeyError, TypeError) as error:
                    raise SeedError("POST %s (item %d) answered HTTP 200 but %s: %s\nbody sent: %s"
                                    % (path, i, error, text[:500], body.decode()))
                if response.will_close:      # the server chose to close: open a new connection
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        except SeedError as error:
            with lock:
                failure.append(str(error))
        except Exception as error:           # noqa: BLE001 — report anything, then stop
            with lock:
                failure.append("POST %s: %r" % (path, error))
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(min(connections, len(bodies)) or 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failure:
        raise SeedError(failure[0])
    return ids


def contract(rng, i, org_ids, now):
    signed = now - rng.random() * 540 * 86400
    body = {
        "organization_id": rng.choice(org_ids),
        "name": "%s合同-%d" % (rng.choice(INDUSTRIES), i),
        "code": "HT-%06d" % i,
        "amount": "%d.%02d" % (rng.randrange(1_000_000), rng.randrange(100)),
        "sign_time": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(signed)),
        "follower_id": [1],
    }
    if rng.random() < 0.5:
        body["remit_amount"] = body["amount"]
        body["remit_time"] = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(min(now, signed + 30 * 86400)))
    return body


def pick_search_term(customers, share):
    """A 4-letter piece of a nickName, starting at a pinyin syllable, matching about `share` of customers."""
    folded = [(real.lower(), nick.lower()) for real, nick, _ in customers]
    candidates = Counter()
    for _, nick, starts in customers:
        for start in starts:
            piece = nick[start:start + 4].lower()
            if len(piece) == 4 and piece.isascii() and piece.isalpha():
                candidates[piece] += 1
    # Count real matches (anywhere in either name) for the most frequent starting pieces.
    best = None
    target = share * len(customers)
    for piece, _ in candidates.most_common(400):
        matches = sum(1 for real, nick in folded if piece in real or piece in nick)
        if best is None or abs(matches - target) < abs(best[1] - target):
            best = (piece, matches)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--organizations", type=int, default=1000)
    parser.add_argument("--customers", type=int, default=10000)
    parser.add_argument("--contracts", type=int, default=0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--random-seed", type=int, default=1)
    parser.add_argument("--search-share", type=float, default=0.01,
                        help="share of customers the chosen search term should match (default 0.01)")
    parser.add_argument("--env", help="also write SEED_* shell assignments to this file")
    args = parser.parse_args()
    if args.organizations < 1 or args.customers < 0 or args.contracts < 0:
        parser.error("--organizations must be at least 1, --customers and --contracts at least 0")

    rng = random.Random(args.random_seed)
    organizations = [organization(rng, i) for i in range(args.organizations)]
    customers = [customer_names(rng) for _ in range(args.customers)]
    phones = phone_numbers(rng, args.customers)

    try:
        started = time.monotonic()
        org_ids = post_all(args.port, args.token, "/api/customers/organization", organizations, args.connections)
        org_seconds = time.monotonic() - started
        print("seeded %d organizations in %.1f s (%.0f/s, %d connections)"
              % (len(org_ids), org_seconds, len(org_ids) / org_seconds, args.connections), flush=True)

        customer_ids, seconds = [], 0.0
        if customers:
            bodies = []
            for (real, nick, _), phone in zip(customers, phones):
                links = rng.sample(org_ids, min(len(org_ids), 1 if rng.random() < 0.6 else 2))
                bodies.append({"realName": real, "nickName": nick, "phoneNumber": phone, "organization_id": links})
            started = time.monotonic()
            customer_ids = post_all(args.port, args.token, "/api/customers/customers", bodies, args.connections)
            seconds = time.monotonic() - started
            print("seeded %d customers in %.1f s (%.0f/s, %d connections), e.g. %s / %s"
                  % (len(customer_ids), seconds, len(customer_ids) / seconds, args.connections,
                     customers[0][0], customers[0][1]), flush=True)

        contract_ids, contract_seconds = [], 0.0
        if args.contracts:
            now = time.time()
            bodies = [contract(rng, i, org_ids, now) for i in range(args.contracts)]
            in_window = sum(1 for b in bodies if b["sign_time"] >= time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now - 365 * 86400)))
            started = time.monotonic()
            contract_ids = post_all(args.port, args.token, "/api/contract/contract", bodies, args.connections)
            contract_seconds = time.monotonic() - started
            print("seeded %d contracts in %.1f s (%.0f/s, %d connections), %d signed in the last 365 days"
                  % (len(contract_ids), contract_seconds, len(contract_ids) / contract_seconds, args.connections, in_window), flush=True)
    except SeedError as error:
        print("seed: FAILED: %s" % error, file=sys.stderr)
        return 1

    term, matches = pick_search_term(customers, args.search_share) if customers else ("", 0)
    if customers:
        print("search term: %s (in the realName or nickName of %d of %d seeded customers, %.2f %%)"
              % (term, matches, len(customers), 100 * matches / len(customers)), flush=True)
    if args.env:
        with open(args.env, "w") as f:
            f.write("SEED_SEARCH_TERM=%s\nSEED_SEARCH_MATCHES=%d\nSEED_CUSTOMERS=%d\nSEED_ORGANIZATIONS=%d\n"
                    "SEED_ORGANIZATION_ID=%d\nSEED_CONTRACTS=%d\nSEED_SECONDS=%.1f\n"
                    % (term, matches, len(customer_ids), len(org_ids), org_ids[0], len(contract_ids),
                       org_seconds + seconds + contract_seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
