#!/bin/sh
# make bench: the quantizer alone per type, then whole-file conversions of the
# anchor-shape model (hidden 2048, 4 layers, vocab 32000, F16, ~615 MB) and of
# one twice its size: wall time, MB/s of F16 input and peak RSS per type.
# Figures to compare (notes 8.2, llama-quantize --pure, 2 threads): Q4_0 401,
# Q8_0 210, Q4_K 39.4 MB/s, Q6_K 85.2 MB/s; peak RSS 1.10 GiB.
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
printf '%-8s %-8s %8s %9s %12s\n' model type wall_s MB/s peak_rss_MiB
for m in anchor anchor2; do
	in=$(stat -c %s "$work/$m/model.safetensors")
	for t in ${BENCH_FILE_TYPES:-q4_0 q8_0 q4_k q6_k}; do
		/usr/bin/time -f '%e %M' -o "$work/time" "$BIN/isq-quantize" -q --pure --threads 2 -m "$work/$m" -t "$t" -o "$work/out.gguf"
		read wall rss < "$work/time"
		awk -v m="$m" -v t="$t" -v w="$wall" -v r="$rss" -v b="$in" \
			'BEGIN { printf "%-8s %-8s %8.2f %9.1f %12.1f\n", m, t, w, b / 1e6 / w, r / 1024 }'
	done
done
rm -f "$work/out.gguf"
