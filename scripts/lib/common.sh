# Shell helpers shared by scripts/bench.sh and scripts/slow-clients.sh (sourced; the caller
# defines `die`).

# free_port: a TCP port on 127.0.0.1 that nothing listens on, below the ephemeral range (32768
# and up), so no outgoing connection holds it.
free_port() {
    local port
    for _ in $(seq 100); do
        port=$((20000 + RANDOM % 12000))
        # Nothing listening there if a connection is refused.
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return; fi
    done
    die "no free port found"
}

# http_code URL: the HTTP status of a GET, or 000 when nothing answered within 2 s.
http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" || true; }
