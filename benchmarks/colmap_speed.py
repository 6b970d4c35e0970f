"""Time and noise floor of the colmap pose estimator on synthroom's ground truth (issue 17).

    python benchmarks/colmap_speed.py '{"mapper": "global", "dedupe": true}' room00,...,room07 dataset,forth-and-back OUT.json

The first argument is the estimator's options as JSON; per clip-trajectory it prints the wall time and the pose
errors of the estimate against the ground truth (the estimator's noise floor), then medians and means.
"""
import time, sys, json, numpy as np
from gac_bench.splits import get_split
from gac_bench.trajectories import make_trajectory
from gac_bench.poses.colmap import ColmapEstimator
from gac_bench.poses.errors import pose_errors
split=get_split('synthroom')
kw=json.loads(sys.argv[1]); clips=sys.argv[2].split(','); trajs=sys.argv[3].split(',')
est=ColmapEstimator(**kw)
rows=[]
for cid in clips:
    spec=[s for s in split.clips if s.clip_id==cid][0]; clip=split.load_clip(spec)
    for tk in trajs:
        traj=make_trajectory(tk, spec.start, spec.stride); frames=clip.frames(traj.source_index)
        t=time.time(); e=est.estimate(frames, clip.K); dt=time.time()-t
        err=pose_errors(clip.c2w[traj.source_index], e.c2w, e.registered)
        rows.append(dict(clip=cid, traj=tk, s=dt, r=err.r_err_rad, t=err.t_err, reg=int(e.registered.sum())))
        print(cid, tk, 'time %.1f'%dt, 'reg', rows[-1]['reg'], 'R %.4f T %.4f'%(err.r_err_rad, err.t_err), flush=True)
for tk in trajs:
    sub=[r for r in rows if r['traj']==tk]
    print(tk, 'median time %.1f'%np.median([r['s'] for r in sub]), 'mean R %.4f T %.4f'%(np.mean([r['r'] for r in sub]), np.mean([r['t'] for r in sub])))
print('median all %.1f'%np.median([r['s'] for r in rows]))
json.dump(rows, open(sys.argv[4],'w'), indent=1) if len(sys.argv)>4 else None
