#!/bin/sh
# make bench: the quantizer alone per type, then whole-file conversions of the
# anchor-shape model (hidden 2048, 4 layers, vocab 32000, F16, ~615 MB) and of
# one twice its size: wall time, MB/s of F16 input and peak RSS per type.
# Figures to compare (notes 8.2, llama-quantize --pure, 2 threads): Q4_0 401,
# Q8_0 210, Q4_K 39.4 MB/s, Q6_K 85.2 MB/s; with 1 thread (wall ~ CPU time):
# Q4_0 281, Q8_0 173, Q4_K 21.1, Q6_K 52.6 MB/s; peak RSS 1.10 GiB.
BIN=${BIN:-build}
set -e
echo "== quantizer alone"
"$BIN/tests/bench-quant" ${BENCH_TYPES:-}
work=${BENCH_DIR:-$BIN/bench}
mkdir -p "$work"
[ -f "$work/anchor/model.safetensors" ] || "$BIN/tests/isq-genmodel" -q --preset anchor -o "$work/anchor"
[ -f "$work/anchor2/model.safetensors" ] || "$BIN/tests/isq-genmodel" -q --preset anchor --layers 12 -o "$work/anchor2"
echo
echo "== whole-file conversion, 2 threads, --pure (MB = 10^6 bytes of F16 input)"
# cpu_s is user + system time: on a shared machine MB per CPU-second (MB/cpu_s)
# is the figure that other work running at the same time does not distort.
printf '%-12s %-6s %8s %9s %8s %9s %12s %6s\n' model type wall_s MB/s cpu_s MB/cpu_s peak_rss_MiB load
convert() { # convert MODEL-PATH LABEL TYPE INPUT-BYTES
	/usr/bin/time -f '%e %U %S %M' -o "$work/time" "$BIN/isq-quantize" -q --pure --threads 2 -m "$1" -t "$3" -o "$work/out.gguf"
	read wall u s rss < "$work/time"
	awk -v m="$2" -v t="$3" -v w="$wall" -v c="$u $s" -v r="$rss" -v b="$4" -v l="$(cut -d' ' -f1 /proc/loadavg)" \
		'BEGIN { split(c, x, " "); cpu = x[1] + x[2]; if (cpu <= 0) cpu = 0.01;
			 printf "%-12s %-6s %8.2f %9.1f %8.2f %9.1f %12.1f %6s\n", m, t, w, b / 1e6 / w, cpu, b / 1e6 / cpu, r / 1024, l }'
}
for m in anchor anchor2; do
	in=$(stat -c %s "$work/$m/model.safetensors")
	for t in ${BENCH_FILE_TYPES:-q4_0 q8_0 q4_k q6_k}; do
		convert "$work/$m" "$m" "$t" "$in"
	done
done
# the same model from a tar archive: read as a stream, never unpacked (same RSS bound)
[ -f "$work/anchor.tar" ] || tar -C "$work" -cf "$work/anchor.tar" anchor
convert "$work/anchor.tar" anchor.tar q4_0 "$(stat -c %s "$work/anchor/model.safetensors")"
rm -f "$work/out.gguf"

# isq-tune answers from the headers alone: goal < 50 ms per model (issue 10).
echo
echo "== isq-tune --json, median of 21 runs (ms); --measure once (s)"
tune_ms() {
	for i in $(seq 21); do
		s=$(date +%s%N)
		"$BIN/isq-tune" -q -m "$1" --json > /dev/null
		e=$(date +%s%N)
		echo $(((e - s) / 1000))
	done | sort -n | sed -n 11p | awk '{ printf "%.1f", $1 / 1000 }'
}
shared=${ISQ_SHARED:-../shared}
for m in "$shared/models/stories260K" "$work/anchor" "$work/anchor2"; do
	[ -e "$m/config.json" ] || continue
	s=$(date +%s%N)
	"$BIN/isq-tune" -q -m "$m" --measure > /dev/null
	e=$(date +%s%N)
	printf '%-40s %8s ms  --measure %6.2f s\n' "$m" "$(tune_ms "$m")" "$(echo "$s $e" | awk '{ print ($2 - $1) / 1e9 }')"
done
