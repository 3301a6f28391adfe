#!/usr/bin/env bash
# The whole job on local emulators, no cloud account: poactl's Atlas sandbox and moto (AWS).
# validate -> plan -> apply -> plan (No changes) -> out-of-band change -> drift (exit 2) ->
# apply (converge) -> drift (exit 0) -> cost -> output (.env) -> week 2, the move: a generated
# dump of the marketplace's 7 collections -> migrate data (verified) -> migrate uploads -> S3
# -> migrate urls (stored file URLs rewritten to the CDN) -> audit (security rules, the app's
# least-privilege IAM policy) -> check (logins and rights, a bucket probe, the alarms) ->
# VPC-only: a VPC made in moto, environments/local-private.yaml filled in with its ids,
# PrivateLink applied in one run, and the app's .env through the private endpoint ->
# own-key encryption on and off -> the API behind the CDN with an uptime check -> alerts
# that reach someone: an SNS topic the alarms notify (its email subscriber pending), the
# API's log group with an error filter and its alarm, and the app's IAM role (no keys).
#
# Environment: POACTL (the binary, default target/debug/poactl), MOTO_PYTHON (the Python
# with moto, default .venv/bin/python). Every process it starts is stopped on exit, Ctrl-C
# or failure; their pids are written to $DEMO_PIDS_FILE when set (for the test).
set -euo pipefail
cd "$(dirname "$0")/.."

POACTL=${POACTL:-target/debug/poactl}
MOTO_PYTHON=${MOTO_PYTHON:-.venv/bin/python}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/poactl-demo.XXXXXX")
PIDS=()

cleanup() {
    local code=$?
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
    exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

STEP=0
TOTAL=24
step() {
    STEP=$((STEP + 1))
    printf '\n\033[1m==> [%d/%d] %s\033[0m\n' "$STEP" "$TOTAL" "$*"
}

# Runs poactl and checks its exit code (some steps are expected to exit 2).
expect() {
    local want=$1
    shift
    set +e
    "$POACTL" "$@"
    local got=$?
    set -e
    if [ "$got" != "$want" ]; then
        echo "demo: 'poactl $*' exited $got, expected $want" >&2
        exit 1
    fi
}

step "starting the emulators: moto (AWS) and poactl's Atlas sandbox, on free loopback ports"
"$MOTO_PYTHON" tests/support/moto_server.py 127.0.0.1 0 >"$WORK/moto.log" 2>&1 &
PIDS+=($!)
"$POACTL" sandbox --listen 127.0.0.1:0 --cluster-delay 2 --url-file "$WORK/atlas.url" \
    --mongo-listen 127.0.0.1:0 --mongo-url-file "$WORK/mongo.url" >"$WORK/sandbox.log" 2>&1 &
PIDS+=($!)
if [ -n "${DEMO_PIDS_FILE:-}" ]; then
    printf '%s\n' "${PIDS[@]}" >"$DEMO_PIDS_FILE"
fi
for _ in $(seq 1 600); do
    MOTO_PORT=$(sed -n 's|.*http://127.0.0.1:\([0-9][0-9]*\).*|\1|p' "$WORK/moto.log" | head -n1)
    [ -n "$MOTO_PORT" ] && [ -s "$WORK/atlas.url" ] && [ -s "$WORK/mongo.url" ] && break
    sleep 0.1
done
if [ -z "${MOTO_PORT:-}" ] || [ ! -s "$WORK/atlas.url" ]; then
    echo "demo: the emulators did not start" >&2
    cat "$WORK/moto.log" "$WORK/sandbox.log" >&2
    exit 1
fi
ATLAS_URL=$(cat "$WORK/atlas.url")
MOTO_URL="http://127.0.0.1:$MOTO_PORT"
echo "    Atlas sandbox: $ATLAS_URL    moto: $MOTO_URL"
echo "    the cluster's hosts: the sandbox's MongoDB wire MOCK (in memory, not a database) at $(cat "$WORK/mongo.url")"

export MONGODB_ATLAS_BASE_URL="$ATLAS_URL" MONGODB_ATLAS_CLIENT_ID=demo MONGODB_ATLAS_CLIENT_SECRET=demo
export AWS_ENDPOINT_URL="$MOTO_URL" AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
export MONGODB_ATLAS_ORG_ID=5f0123456789abcdef012345 POAFIX_DB_PASSWORD=demo-password-not-a-secret POAFIX_MIGRATIONS_PASSWORD=demo-migrations-password-not-a-secret

step "validate: check environments/local.yaml (no network)"
expect 0 validate -e local

step "plan: read the (empty) live state and show what apply would do"
expect 2 plan -e local --detailed-exitcode

step "apply: create the Atlas project, M0 cluster, user, access list, bucket, CDN, alarms"
expect 0 apply -e local --auto-approve

step "plan again: nothing left to do"
expect 0 plan -e local --detailed-exitcode

step "an out-of-band change: someone suspends the bucket's versioning and protects the cluster"
# moto routes a request to S3 by the credential scope of its Authorization header.
curl -fsS -X PUT "$MOTO_URL/poafix-local-uploads?versioning" -H 'Content-Type: application/xml' \
    -H 'Authorization: AWS4-HMAC-SHA256 Credential=demo/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=demo' \
    --data-binary '<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Suspended</Status></VersioningConfiguration>' >/dev/null
TOKEN=$(curl -fsS -u demo:demo -d grant_type=client_credentials "$ATLAS_URL/api/oauth/token" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
GROUP=$(curl -fsS -H "Authorization: Bearer $TOKEN" -H 'Accept: application/vnd.atlas.2023-01-01+json' \
    "$ATLAS_URL/api/atlas/v2/groups/byName/poafix-local" | sed -n 's/.*"id":"\([0-9a-f]\{24\}\)".*/\1/p' | head -n1)
curl -fsS -X PATCH -H "Authorization: Bearer $TOKEN" \
    -H 'Accept: application/vnd.atlas.2024-10-23+json' -H 'Content-Type: application/vnd.atlas.2024-10-23+json' \
    -d '{"terminationProtectionEnabled": true}' "$ATLAS_URL/api/atlas/v2/groups/$GROUP/clusters/main" >/dev/null
echo "    versioning suspended through moto's S3 API; termination protection set through the Atlas API"

step "drift: what CI would see (exit 2: drift)"
expect 2 drift -e local

step "apply: converge back to the spec"
expect 0 apply -e local --auto-approve

step "drift again: clean (exit 0)"
expect 0 drift -e local

step "cost: the monthly estimate and the growth scenario (no network); growth is over the \$25 budget: exit 2"
expect 2 cost -e local --scenario growth

step "output: the app's .env, rendered from live state through templates/app.env.tera"
expect 0 output -e local

step "week 2, the move: the old data as mongodump wrote it (generated: 7 collections) and its uploads; a dry run first"
python3 scripts/seed-data.py "$WORK/old"
expect 0 migrate data -e local --from "$WORK/old/dump" --dry-run

step "migrate data: every collection into the Atlas cluster, then its indexes, then verified (counts and content hashes)"
expect 0 migrate data -e local --from "$WORK/old/dump"
echo "    a rerun resumes by _id: nothing is sent twice, and everything is compared again"
expect 0 migrate data -e local --from "$WORK/old/dump" --collections users -q

step "migrate uploads: the local uploads into the private bucket (SHA-256 checked, Cache-Control from the CDN's TTLs)"
expect 0 migrate uploads -e local --from "$WORK/old/uploads" --manifest "$WORK/uploads-manifest.json"

step "migrate urls: the stored file URLs become CDN URLs (a dry run, then the change; --revert undoes it)"
URL_FIELDS=(--field users.avatar --field serviceproviders.portfolio.url --field serviceproviders.licenseDocument --old-base http://localhost:5000/uploads/ --old-base /uploads/)
expect 0 migrate urls -e local --manifest "$WORK/uploads-manifest.json" "${URL_FIELDS[@]}" --dry-run
expect 0 migrate urls -e local --manifest "$WORK/uploads-manifest.json" "${URL_FIELDS[@]}" --auto-approve

step "audit: security and reliability rules over the spec and the live state, and the app's IAM policy"
expect 0 audit -e local --fail-on high

# The CDN group fetches through the distribution's edge (https://ID.cloudfront.net), which the
# local emulators do not have; the tests run it against a fake of the edge (POACTL_CDN_EDGE_URL).
step "check: log in as the database user and try its rights, a probe object in the bucket, the alarms, the backups (the CDN needs a real edge)"
expect 0 check -e local --only database --only storage --only alarms --only backups

# One EC2 Query call to moto, as the team's own network tooling would make it.
ec2() {
    curl -fsS "$MOTO_URL/" -H 'Content-Type: application/x-www-form-urlencoded' \
        -H 'Authorization: AWS4-HMAC-SHA256 Credential=demo/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=demo' \
        --data "Version=2016-11-15&$1"
}
first() { sed -n "s|.*<$1>\([^<]*\)</$1>.*|\1|p" | head -n1; }

step "VPC-only: the app's VPC, two subnets and its security group, made in moto; environments/local-private.yaml filled in with their ids"
VPC=$(ec2 "Action=CreateVpc&CidrBlock=10.0.0.0%2F16" | first vpcId)
SUBNET_A=$(ec2 "Action=CreateSubnet&VpcId=$VPC&CidrBlock=10.0.1.0%2F24&AvailabilityZone=us-east-1a" | first subnetId)
SUBNET_B=$(ec2 "Action=CreateSubnet&VpcId=$VPC&CidrBlock=10.0.2.0%2F24&AvailabilityZone=us-east-1b" | first subnetId)
APP_SG=$(ec2 "Action=CreateSecurityGroup&GroupName=app&GroupDescription=app+servers&VpcId=$VPC" | first groupId)
sed -e "s/vpc-0123456789abcdef0/$VPC/" -e "s/subnet-0aaaaaaaaaaaaaaaa/$SUBNET_A/" -e "s/subnet-0bbbbbbbbbbbbbbbb/$SUBNET_B/" \
    -e "s/sg-0cccccccccccccccc/$APP_SG/" environments/local-private.yaml >"$WORK/local-private.yaml"
echo "    VPC $VPC, subnets $SUBNET_A $SUBNET_B, app servers $APP_SG"
expect 0 validate -e "$WORK/local-private.yaml"

step "apply, VPC-only: Atlas' endpoint service, the AWS interface endpoint and its security group, the registration, the M10 cluster, in one run"
expect 0 apply -e "$WORK/local-private.yaml" --auto-approve
expect 0 plan -e "$WORK/local-private.yaml" --detailed-exitcode

step "output: the VPC-only environment's .env connects through the private endpoint"
expect 0 output -e "$WORK/local-private.yaml"

step "encryption with our own key, on in one apply: a KMS key, Atlas' access role, the IAM role and its grant, the authorization, the project setting, then the cluster"
sed -i "s|^  project: poafix-local-private$|&\n  encryption: { kms_key: { create: true }, region: us-east-1 }|" "$WORK/local-private.yaml"
expect 0 apply -e "$WORK/local-private.yaml" --auto-approve
expect 0 plan -e "$WORK/local-private.yaml" --detailed-exitcode

step "and off in one apply: the cluster back on Atlas' keys, the project off, the role removed, the key's deletion scheduled (30 days)"
sed -i "/^  encryption: /d" "$WORK/local-private.yaml"
expect 0 apply -e "$WORK/local-private.yaml" --prune --allow-destroy --auto-approve
expect 0 plan -e "$WORK/local-private.yaml" --detailed-exitcode

step "the API behind the CDN: the distribution gains the API as a second origin for api/* (uncached, every method, the viewer's headers) with security headers, and a Route 53 uptime check of the API with its alarm"
cat >"$WORK/local-edge.yaml" <<EOF
extends: $PWD/environments/local.yaml
cdn:
  distributions:
    - name: assets
      origin: null
      origins:
        s3-origin: { bucket: poafix-local-uploads }
        api: { domain: api.poafix.example, health: /api/health }
      default_origin: s3-origin
      security_headers: true
      cache:
        - { path: "images/*", ttl: 365d }
        - { path: "documents/*", ttl: 180d }
        - { path: "api/*", origin: api, cache: disabled, methods: all, forward: all-viewer-except-host }
monitoring:
  uptime:
    - { name: api, url: "https://api.poafix.example/api/health", search: ok, notify: [arn:aws:sns:us-east-1:123456789012:poafix-local-alerts] }
EOF
expect 0 apply -e "$WORK/local-edge.yaml" --auto-approve
expect 0 plan -e "$WORK/local-edge.yaml" --detailed-exitcode

step "alerts that reach someone: an SNS topic with an email subscriber (pending until confirmed) that every alarm notifies, the API's log group (14 days, an error filter and its alarm), and the app's IAM role for ECS tasks: no access keys in its .env"
cat >"$WORK/local-ops.yaml" <<EOF
extends: $WORK/local-edge.yaml
notifications:
  topics:
    alerts: { email: [ops@poafix.example], region: us-east-1 }
    billing: { email: [billing@poafix.example], region: us-east-1 }
monitoring:
  alarms:
    - { name: cdn-5xx, notify: ["\${notifications.topics.alerts.arn}"] }
    - { name: uploads-size, notify: ["\${notifications.topics.alerts.arn}"] }
    - { name: api-errors, metric: { namespace: Poafix, name: ApiErrors }, period: 5m, above: 10, treat_missing_data: notBreaching, region: us-east-1, notify: ["\${notifications.topics.alerts.arn}"] }
  uptime:
    - { name: api, url: "https://api.poafix.example/api/health", search: ok, notify: ["\${notifications.topics.alerts.arn}"] }
  log_groups:
    - name: /poafix/local/api
      retention: 14d
      metric_filters:
        - { name: api-errors, pattern: '{ \$.level = "error" }', metric: Poafix/ApiErrors }
billing:
  alerts:
    - { above_usd: 10, notify: ["\${notifications.topics.billing.arn}"] }
  budget_usd: 25
app:
  iam: { role: poafix-local-app, trusted_by: [ecs-tasks.amazonaws.com] }
EOF
expect 0 apply -e "$WORK/local-ops.yaml" --auto-approve
expect 0 plan -e "$WORK/local-ops.yaml" --detailed-exitcode
expect 0 check -e "$WORK/local-ops.yaml" --only notifications
expect 0 output -e "$WORK/local-ops.yaml"

printf '\n\033[1mDemo complete.\033[0m Every emulator is stopped on exit.\n'
