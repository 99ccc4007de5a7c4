# tests/lib.sh: the pass/fail bookkeeping of the shell tests (image,
# packaging, bundle), sourced. check runs a command with its output in
# $WORK/check.out, shown (last 20 lines) only when it fails; passed and
# failed count the results, and summary prints them and fails when any
# check failed (a test script ends with it).
passed=0
failed=0
log() { echo "==> [$(date -u +%H:%M:%S)] $*"; }
ok() { passed=$((passed + 1)); echo "    ok: $*"; }
fail() { failed=$((failed + 1)); echo "    FAIL: $*" >&2; }
check() { # DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@" >"$WORK/check.out" 2>&1; then ok "$what"; else
        fail "$what"
        sed 's/^/        /' "$WORK/check.out" | tail -n 20 >&2
    fi
}
summary() { # LABEL
    echo
    echo "$1: $passed passed, $failed failed"
    [[ $failed -eq 0 ]]
}
