#!/bin/bash
# mem_guard.sh LOG CMD...: runs CMD under /usr/bin/time -v (output into LOG) and
# kills it if MemAvailable falls under 1 GiB (the machine has no swap: a run of
# the full model must not push the other jobs into the OOM killer). Appends the
# exit status and the lowest MemAvailable seen. For docs/benchmarks/zimage-cpu.md.
log=$1; shift
/usr/bin/time -v "$@" > "$log" 2>&1 &
pid=$!
minavail=999999999
while kill -0 $pid 2>/dev/null; do
  a=$(awk '/MemAvailable/{print $2}' /proc/meminfo)
  [ "$a" -lt "$minavail" ] && minavail=$a
  if [ "$a" -lt 1048576 ]; then echo "GUARD: MemAvailable $a kB < 1 GiB, killing" >> "$log"; pkill -P $pid; kill $pid; fi
  sleep 0.5
done
wait $pid; rc=$?
echo "GUARD: rc=$rc min MemAvailable ${minavail} kB" >> "$log"
