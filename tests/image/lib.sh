# tests/image/lib.sh: the pass/fail bookkeeping of the image tests, sourced.
# check runs a command with its output in $WORK/check.out, shown (last 20
# lines) only when it fails; passed and failed count the results.
passed=0
failed=0
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
