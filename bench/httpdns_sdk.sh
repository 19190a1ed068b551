# shellcheck shell=bash
# bench/httpdns_sdk.sh: the HTTPDNS requests the mobile SDKs send, for bench/run.sh and
# bench/httpdns.sh (sourced, after lib.sh). Needs openssl and od.
#
#   sdk_config                 the [httpdns] accounts and DNSPod key the requests below use
#   sdk_paths NAME             sets path_of[pod-plain], path_of[pod-aes], path_of[v2] for NAME A
#   sdk_body_has W FILE ANSWER whether W's answer in FILE (as curl saved it) holds ANSWER
#
# pod-plain  DNSPod Android SDK, HTTPS mode: /d?dn=NAME&ip=&clientip=1&ttl=1&id=&token=&sdk=
# pod-aes    DNSPod Android SDK, AES: dn is hex(IV || AES-128-CBC(NAME)) under the id's key padded
#            with "0" to 16 bytes, &alg=aes; the answer comes back encrypted the same way. One
#            IV for the whole run (h2load repeats one URL); the node decrypts and encrypts per
#            request all the same.
# v2         Alibaba Node.js SDK 1.0.0: /v2/d?id=&dn=NAME&q=4&m=0&exp=&s=, s the hex
#            HMAC-SHA256 (key: the hex secret decoded) of the sorted parameters; exp one hour on.

sdk_dnspod_id=10000
sdk_dnspod_token=bench-token
sdk_aes_key=bench-aes-key
sdk_v2_account=100001
sdk_v2_secret=62656e63682d7632

sdk_config() {
    cat <<EOF

[[httpdns.accounts]]
id = "$sdk_v2_account"
secret = "$sdk_v2_secret"

[[httpdns.dnspod_keys]]
id = "$sdk_dnspod_id"
key = "bench-des"
aes_key = "$sdk_aes_key"
token = "$sdk_dnspod_token"
EOF
}

# The AES key as the SDK makes it (padded with "0" to 16 bytes), in hex.
sdk_aes_key_hex() {
    local key=$sdk_aes_key
    while ((${#key} < 16)); do key+=0; done
    printf '%s' "$key" | od -An -v -tx1 | tr -d ' \n'
}

# path_of is the caller's associative array of request paths.
# shellcheck disable=SC2034
sdk_paths() { # name
    local name=$1 iv cipher exp sig
    iv=$(openssl rand -hex 16)
    cipher=$(printf '%s' "$name" | openssl enc -aes-128-cbc -K "$(sdk_aes_key_hex)" -iv "$iv" | od -An -v -tx1 | tr -d ' \n')
    exp=$(($(date +%s) + 3600))
    sig=$(printf 'dn=%s&exp=%s&id=%s&m=0&q=4' "$name" "$exp" "$sdk_v2_account" |
        openssl dgst -sha256 -mac HMAC -macopt "hexkey:$sdk_v2_secret" | awk '{print $NF}')
    path_of["pod-plain"]="/d?dn=$name&ip=&clientip=1&ttl=1&id=$sdk_dnspod_id&token=$sdk_dnspod_token&sdk=1_4.10.1a"
    path_of["pod-aes"]="/d?dn=$iv$cipher&ip=&clientip=1&ttl=1&id=$sdk_dnspod_id&alg=aes&sdk=1_4.10.1a"
    path_of["v2"]="/v2/d?id=$sdk_v2_account&dn=$name&q=4&m=0&exp=$exp&s=$sig"
}

sdk_body_has() { # workload file answer
    local w=$1 file=$2 answer=$3 hex
    if [[ $w == pod-aes ]]; then
        hex=$(cat "$file")
        # shellcheck disable=SC2059,SC2001 # the format is the ciphertext as \x escapes
        printf "$(sed 's/../\\x&/g' <<<"${hex:32}")" |
            openssl enc -d -aes-128-cbc -K "$(sdk_aes_key_hex)" -iv "${hex:0:32}" 2>/dev/null |
            grep -qF "$answer,"
    else
        grep -qF "$answer" "$file"
    fi
}
