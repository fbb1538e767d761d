#!/bin/bash
# One GPU session, prepared to run once inside a lent machine's 10-minute command limit:
#   1. benchmarks/gpu.py (every GPU figure, deadline 175 s);
#   2. the showcase on CUDA, timed: data and plan, the 16 jobs 6 at a time (`sweep run --index`),
#      then `showcase --device cuda` (finds every run done: evaluate, Grad-CAM, collect);
#   3. torchrun --nproc_per_node 1, SIGTERM after the first epoch, then the resume.
# Usage, from the source tree on the GPU machine (Python with torch >= 2.11 + CUDA):
#   OUT=out HAM_ARTEFACTS_COMMIT=<commit> bash benchmarks/gpu_session.sh
# Wheels the machine lacks (grad-cam, ttach) are installed from .whl/ when that folder exists.
# Everything textual goes to $OUT/session.log; the showcase comes back as $OUT/showcase.tgz (or, when
# it did not finish, what trained as $OUT/runs.tgz, without checkpoints). Each step has its own limit.
set -u
OUT=${OUT:-gpu-session}; mkdir -p "$OUT"
START=$(date +%s)
exec > >(tee -a "$OUT/session.log") 2>&1
el() { echo $(( $(date +%s) - START )); }
until_t() { local l=$(( $1 - $(el) )); [ $l -lt 1 ] && l=1; echo $l; }
step() { echo "=== [t=$(el)s] $*"; }

if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD PYTHONUNBUFFERED=1
export HAM_ARTEFACTS_COMMIT=${HAM_ARTEFACTS_COMMIT:-$(git rev-parse HEAD 2>/dev/null)}
step env
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
nproc; free -g | head -2
python3 -c "import torch,torchvision,numpy,PIL,cv2,h5py,sklearn,statsmodels,pandas,pytorch_grad_cam; print('torch',torch.__version__,'cuda',torch.version.cuda,'cudnn',torch.backends.cudnn.version(),'torchvision',torchvision.__version__,'numpy',numpy.__version__,'PIL',PIL.__version__,'cv2',cv2.__version__,'h5py',h5py.__version__)"

step "gpu.py (deadline 175 s)"
timeout 200 python3 benchmarks/gpu.py --deadline 175 > "$OUT/gpu.jsonl"; echo "gpu.py rc=$?"
cat "$OUT/gpu.jsonl"

W=/tmp/showcase-work
step "showcase data + plan"
timeout 90 python3 benchmarks/gpu_session_plan.py $W; echo "data rc=$?"
cp $W/data/manifest.json "$OUT/manifest.json"  # its content digests must equal a CPU build's
ORDER=$(python3 -c "
import json; jobs=[json.loads(l) for l in open('$W/runs/jobs.jsonl')]
print(' '.join(str(j['index']) for j in sorted(jobs, key=lambda j: j['arch']=='resnet34')))")
step "training, 6 jobs at a time, detectors first: $ORDER"
T_TRAIN=$(el)
echo $ORDER | tr ' ' '\n' | timeout $(until_t 420) xargs -P 6 -I{} sh -c \
  "python3 -m generator sweep run --jobs $W/runs/jobs.jsonl --index {} --quiet > $W/job{}.log 2>&1; echo \"job {} rc=\$? at \$(date +%s)\"; tail -1 $W/job{}.log"
echo "training took $(( $(el) - T_TRAIN )) s"
step "showcase (evaluate, Grad-CAM, collect)"
timeout $(until_t 515) python3 -m generator showcase --device cuda --work $W --out /tmp/showcase-out --quiet
echo "showcase rc=$?"
if [ -f /tmp/showcase-out/provenance.json ]; then
  tar czf "$OUT/showcase.tgz" -C /tmp showcase-out
else
  (cd $W && tar czf "$OUT/runs.tgz" --exclude='*.pt' runs job*.log)
fi

R=/tmp/ddp; RUN=$R/resnet34/train_none/fold0
if [ $(until_t 560) -gt 40 ]; then
  step "torchrun --nproc_per_node 1: SIGTERM after epoch 1, then resume"
  CMD="torchrun --standalone --nproc_per_node 1 -m generator train --data $W/data --out $R --arch resnet34 --train-variant train_none --fold 0 --profile paper --device cuda --epochs 4 --image-size 224 --workers 8 --no-predict --quiet"
  $CMD > /tmp/ddp1.log 2>&1 & P=$!
  for i in $(seq 1 100); do [ -s $RUN/log.jsonl ] && break; sleep 0.2; done
  kill -TERM $P; wait $P; echo "killed run rc=$?"; tail -3 /tmp/ddp1.log; ls $RUN; wc -l < $RUN/log.jsonl
  timeout $(until_t 565) $CMD > /tmp/ddp2.log 2>&1; echo "resumed run rc=$?"; tail -3 /tmp/ddp2.log; ls $RUN
  cut -c1-200 $RUN/log.jsonl
fi
step done
