#!/bin/sh
# A launch agent for mpirun (--mca plm_rsh_agent) that "reaches" a host by entering a Linux network
# namespace on this machine instead of ssh-ing to another one. The two-host test uses it to run ranks
# in two namespaces joined by a veth pair, so that they talk over real TCP.
#
#   DANN_NETNS_HOSTS="10.77.0.1=nsA 10.77.0.2=nsB"   host (as the hostfile names it) = namespace
#   DANN_NETNS_LOG=/path/file                        optional: one line per launch
#   DANN_NETNS_UTS=1                                 optional: also a UTS namespace whose hostname is the
#                                                    namespace's name, so the "hosts" differ by name as well
#                                                    (Open MPI names its shared-memory files by hostname)
#
# mpirun calls it like ssh: AGENT [options] HOST COMMAND...
while [ $# -gt 0 ]; do
    case "$1" in
        -*) shift ;;
        *) break ;;
    esac
done
host="$1"
shift
namespace=""
for pair in $DANN_NETNS_HOSTS; do
    if [ "${pair%%=*}" = "$host" ]; then namespace="${pair#*=}"; fi
done
if [ -z "$namespace" ]; then
    echo "netns-launch-agent: no namespace for host '$host' in DANN_NETNS_HOSTS" >&2
    exit 255
fi
if [ -n "$DANN_NETNS_LOG" ]; then echo "$host $namespace" >> "$DANN_NETNS_LOG"; fi
if [ -n "$DANN_NETNS_UTS" ]; then
    exec ip netns exec "$namespace" unshare --uts sh -c "hostname $namespace && $*"
fi
exec ip netns exec "$namespace" sh -c "$*"
