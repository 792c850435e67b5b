"""The parts of ``glassworld eval`` (:mod:`worldmodel.evaluate`, which holds the protocol and runs them), one module
per responsibility:

* :mod:`.clips`: the model under evaluation and the windows of the split it is scored on;
* :mod:`.networks`: the frozen feature networks (LPIPS, Inception for FID, I3D for FVD), from local files only;
* :mod:`.common`: the result table with the reason for each null metric, shared helpers;
* :mod:`.gma`: segmentation, shift and action-code scores on real frames;
* :mod:`.generation`: generation from the first frame, its image quality, the frozen-frame-0 baseline, FID/FVD;
* :mod:`.positions`: agent positions in generated frames, agent-look crops and keypoint tracking.

Each metric family is an accumulator with ``add`` (one batch) and ``aggregate`` (into :class:`.common.Results`).
"""
