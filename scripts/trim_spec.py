#!/usr/bin/env python3
"""Trim the multi-version Atlas Admin API v2 spec to the paths a provisioning CLI needs,
keeping only transitively referenced components. Optionally keep only one API version per operation
(the newest version <= --version, like foascli split does).
A copy of ../shared/atlas/tools/trim_spec.py with the paths poactl added since.
usage: trim_spec.py IN.yaml OUT.yaml [--version 2025-03-12]"""
import sys, json, re, argparse, yaml
ap = argparse.ArgumentParser(); ap.add_argument('inp'); ap.add_argument('out'); ap.add_argument('--version'); ap.add_argument('--break-cycles', action='store_true', help='split Parent{oneOf:[Child...]} / Child{allOf:[Parent]} cycles into Parent + ParentBase (validators recurse forever otherwise)'); ap.add_argument('--fix-patterns', action='store_true', help=r'rewrite \: to : in patterns (invalid under JS u-flag; makes Prism/ajv silently skip the whole schema)')
a = ap.parse_args()
d = yaml.load(open(a.inp), Loader=yaml.CSafeLoader)
KEEP = [r'^/api/atlas/v2$', r'^/api/atlas/v2/groups$', r'^/api/atlas/v2/groups/\{groupId\}$', r'^/api/atlas/v2/groups/byName/\{groupName\}$',
        r'^/api/atlas/v2/groups/\{groupId\}/clusters$', r'^/api/atlas/v2/groups/\{groupId\}/clusters/\{clusterName\}$',
        r'^/api/atlas/v2/groups/\{groupId\}/clusters/\{clusterName\}/backup/schedule$',
        r'^/api/atlas/v2/groups/\{groupId\}/clusters/tenantUpgrade$', r'^/api/atlas/v2/groups/\{groupId\}/flexClusters(:tenantUpgrade)?$',
        r'^/api/atlas/v2/groups/\{groupId\}/flexClusters/\{name\}$', r'^/api/atlas/v2/groups/\{groupId\}/accessList',
        r'^/api/atlas/v2/groups/\{groupId\}/databaseUsers$', r'^/api/atlas/v2/groups/\{groupId\}/databaseUsers/\{databaseName\}/\{username\}$',
        r'^/api/atlas/v2/groups/\{groupId\}/alertConfigs$', r'^/api/atlas/v2/groups/\{groupId\}/alertConfigs/\{alertConfigId\}$',
        r'^/api/atlas/v2/alertConfigs/matchers/fieldNames$', r'^/api/atlas/v2/orgs/\{orgId\}/invoices', r'^/api/atlas/v2/rateLimits',
        r'^/api/atlas/v2/orgs/\{orgId\}/groups$', r'^/api/atlas/v2/groups/\{groupId\}/clusters/\{clusterName\}/status$',
        r'^/api/atlas/v2/groups/\{groupId\}/clusters/\{clusterName\}/backup/snapshots$',
        # PrivateLink (issue 30): the endpoint services and their interface endpoints.
        r'^/api/atlas/v2/groups/\{groupId\}/privateEndpoint/endpointService$',
        r'^/api/atlas/v2/groups/\{groupId\}/privateEndpoint/\{cloudProvider\}/endpointService(/\{endpointServiceId\}(/endpoint(/\{endpointId\})?)?)?$',
        # Network peering (issue 30, item 5): the containers and the peering connections.
        r'^/api/atlas/v2/groups/\{groupId\}/containers(/\{containerId\})?$',
        r'^/api/atlas/v2/groups/\{groupId\}/peers(/\{peerId\})?$',
        # Project settings (issue 31): the maintenance window and database auditing.
        r'^/api/atlas/v2/groups/\{groupId\}/maintenanceWindow$', r'^/api/atlas/v2/groups/\{groupId\}/auditLog$',
        # Customer key management (issue 31, item 1): access roles and the project setting.
        r'^/api/atlas/v2/groups/\{groupId\}/cloudProviderAccess(/\{roleId\}|/\{cloudProvider\}/\{roleId\})?$',
        r'^/api/atlas/v2/groups/\{groupId\}/encryptionAtRest$']
paths = {p: v for p, v in d['paths'].items() if any(re.search(k, p) for k in KEEP)}
VRE = re.compile(r'application/vnd\.atlas\.(\d{4}-\d{2}-\d{2})\+')
if a.version:
    for p, item in list(paths.items()):
        for m, op in list(item.items()):
            if m not in ('get', 'post', 'put', 'patch', 'delete'): continue
            vers = set()
            for c in list(op.get('requestBody', {}).get('content', {})) + [ct for r in op.get('responses', {}).values() for ct in r.get('content', {})]:
                mm = VRE.match(c); vers.add(mm.group(1)) if mm else None
            ok = sorted(v for v in vers if v <= a.version)
            if not ok: del item[m]; continue
            keep = ok[-1]
            def filt(content):
                return {ct: c for ct, c in content.items() if not VRE.match(ct) or VRE.match(ct).group(1) == keep}
            if 'requestBody' in op: op['requestBody']['content'] = filt(op['requestBody']['content'])
            for r in op.get('responses', {}).values():
                if 'content' in r: r['content'] = filt(r['content'])
        if not any(k in item for k in ('get', 'post', 'put', 'patch', 'delete')): del paths[p]
comps = d['components']; keep = {}
if a.break_cycles:
    S = comps['schemas']; nb = 0
    for name in list(S):
        s = S[name]
        alts = [x.get('$ref', '').split('/')[-1] for x in s.get('oneOf', [])]
        kids = [k for k in alts if k in S and any(y.get('$ref', '').split('/')[-1] == name for y in S[k].get('allOf', []))]
        if not kids: continue
        base = {k: v for k, v in s.items() if k not in ('oneOf', 'discriminator')}
        S[name + 'Base'] = base; nb += 1
        for k in kids:
            for y in S[k]['allOf']:
                if y.get('$ref', '').split('/')[-1] == name: y['$ref'] = '#/components/schemas/' + name + 'Base'
    print('broke', nb, 'oneOf/allOf cycles')
def walk(o):
    if isinstance(o, dict):
        for k, v in o.items():
            if k == '$ref' and isinstance(v, str) and v.startswith('#/components/'):
                _, _, sec, name = v.split('/', 3)
                if name not in keep.setdefault(sec, set()):
                    keep[sec].add(name); walk(comps[sec][name])
            elif k == 'discriminator' and isinstance(v, dict):
                # A discriminator without oneOf (EndpointService, PrivateLinkEndpoint) names its
                # alternatives only in `mapping`: keep them too.
                walk([{'$ref': r} for r in v.get('mapping', {}).values()])
            else: walk(v)
    elif isinstance(o, list):
        for v in o: walk(v)
walk(paths)
newc = {sec: {n: comps[sec][n] for n in sorted(names)} for sec, names in keep.items()}
newc['securitySchemes'] = comps.get('securitySchemes', {})
out = {'openapi': d['openapi'], 'info': d['info'], 'servers': d['servers'], 'security': d.get('security'),
       'tags': d.get('tags'), 'paths': paths, 'components': newc}
if a.fix_patterns:
    def fix(o):
        if isinstance(o, dict):
            for k, v in o.items():
                if k == 'pattern' and isinstance(v, str): o[k] = v.replace('\\:', ':')
                else: fix(v)
        elif isinstance(o, list):
            for v in o: fix(v)
    fix(out)
yaml.dump(out, open(a.out, 'w'), Dumper=yaml.CSafeDumper, sort_keys=False, allow_unicode=True, width=1000)
n_ops = sum(1 for i in paths.values() for m in i if m in ('get', 'post', 'put', 'patch', 'delete'))
print(f"{a.out}: {len(paths)} paths, {n_ops} operations, {sum(len(v) for v in newc.values())} components")
