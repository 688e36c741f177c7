#!/usr/bin/env bash
# podman 4.3 runs containers' healthchecks from systemd timers; without systemd as PID 1 they never
# run and every container stays "starting". This runs each at its container's own interval
# (`podman healthcheck run` keeps the streaks and the start period) until it is killed.
declare -A next
while true; do
  now=$(date +%s)
  ids=$(podman ps -q 2>/dev/null)
  if [[ -n "$ids" ]]; then
    while read -r id seconds; do
      [[ -z "$id" || -z "$seconds" || "$seconds" == "0" ]] && continue
      if (( ${next[$id]:-0} <= now )); then
        next[$id]=$(( now + seconds ))
        timeout 30 podman healthcheck run "$id" >/dev/null 2>&1 &
      fi
    done < <(podman inspect --format '{{.ID}} {{if .Config.Healthcheck}}{{printf "%.0f" .Config.Healthcheck.Interval.Seconds}}{{else}}0{{end}}' $ids 2>/dev/null)
  fi
  sleep 1
done
