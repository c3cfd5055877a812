#!/bin/sh
# mpirun across two "hosts" on this machine: two network namespaces joined by a veth pair (as
# DistributedTwoHostTests sets up), ranks filling the first namespace's slots then the second's, shared
# memory inside a namespace and TCP across the pair. For measuring what a network between two nodes costs
# without a second node. Needs root (ip netns); removes the namespaces on exit.
#
#   scripts/netns-mpirun.sh NP PROGRAM [ARGS…]      e.g. scripts/netns-mpirun.sh 2 .build/release/dann-dist bench --allreduce
#
# NETNS_MPIRUN_FLAGS adds mpirun flags (split on spaces), e.g. "--oversubscribe --mca mpi_yield_when_idle 1".
# The veth pair's TCP runs in the kernel on this machine's own cores: its bandwidth is a copy rate of
# this CPU, not a network's, and it competes with the ranks for the cores.
set -eu
if [ $# -lt 2 ]; then
    echo "usage: netns-mpirun.sh NP PROGRAM [ARGS...]" >&2
    exit 64
fi
np=$1; shift
case "$np" in
    ''|*[!0-9]*|0|1) echo "netns-mpirun.sh: NP must be an integer of at least 2 (got '$np')" >&2; exit 64 ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
suffix=$$
a=dann-sa$suffix b=dann-sb$suffix
work=$(mktemp -d)
cleanup() {
    ip netns delete "$a" 2>/dev/null || true
    ip netns delete "$b" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$a"
ip netns add "$b"
ip link add "dsa$suffix" type veth peer name "dsb$suffix"
ip link set "dsa$suffix" netns "$a"
ip link set "dsb$suffix" netns "$b"
ip -n "$a" addr add 10.77.0.1/24 dev "dsa$suffix"
ip -n "$b" addr add 10.77.0.2/24 dev "dsb$suffix"
for ns in "$a" "$b"; do
    ip -n "$ns" link set lo up
done
ip -n "$a" link set "dsa$suffix" up
ip -n "$b" link set "dsb$suffix" up

# Half the ranks on each "host" (the first gets the odd one), filled in order as --map-by slot does.
slots=$(( (np + 1) / 2 ))
printf '10.77.0.1 slots=%s\n10.77.0.2 slots=%s\n' "$slots" "$slots" > "$work/hostfile"
export DANN_NETNS_HOSTS="10.77.0.1=$a 10.77.0.2=$b"
# Each "host" gets its own hostname too: with the machine's one name, Open MPI's shared-memory files of the
# two would collide (the ranks crashed in the vader BTL at np 4).
export DANN_NETNS_UTS=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# shellcheck disable=SC2086
ip netns exec "$a" unshare --uts sh -c 'hostname "$0" && exec "$@"' "$a" mpirun --hostfile "$work/hostfile" -np "$np" --map-by slot --bind-to none \
    --mca plm_rsh_agent "$here/netns-launch-agent.sh" \
    --mca btl tcp,vader,self --mca btl_tcp_if_include 10.77.0.0/24 --mca oob_tcp_if_include 10.77.0.0/24 \
    ${NETNS_MPIRUN_FLAGS:-} "$@"
