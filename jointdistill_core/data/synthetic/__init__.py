"""Synthetic scenes: the project's source of dense metric depth, rendered by analytic ray
casting (vectorised numpy, no GPU, no system packages) with exact ground truth.

Layouts: streets (straight, curved, intersections), parking lots, sidewalks and plazas seen
from a delivery robot, and indoor logistics and office scenes (layouts/). Objects people
recognise (objects/): vehicles with cabins, glazing and wheels, jointed people, trees with
irregular crowns, street furniture, buildings, racks, furniture. Light: sun and sky with
clouds, overcast, dusk and indoor lamps, cast shadows, ambient occlusion, reflections
(lighting.py); camera flaws (effects.py); domain randomisation of colours (materials.py).

Ground truth: ``depth`` in metres along the optical axis (0 = sky), ``labels`` in
Cityscapes' 7 categories (0 flat, 1 construction, 2 object, 3 nature, 4 sky, 5 human,
6 vehicle), ``K`` of the rendered image. Deterministic from a seed; splits by seed range.
See docs/synthetic.md.
"""
from jointdistill_core.data.synthetic.camera import (
                                                     DEFAULT_FOV_RANGE_DEG,
                                                     camera_rotation,
                                                     intrinsics,
                                                     pixel_rays,
)
from jointdistill_core.data.synthetic.dataset import SPLIT_SEED_START, SyntheticStreetDataset
from jointdistill_core.data.synthetic.layouts import (
                                                     DEFAULT_MIX,
                                                     GROUPS,
                                                     INDOOR_LAYOUTS,
                                                     LAYOUTS,
                                                     SceneMix,
)
from jointdistill_core.data.synthetic.render import SceneFrame, render_scene

__all__ = ['DEFAULT_FOV_RANGE_DEG', 'DEFAULT_MIX', 'GROUPS', 'INDOOR_LAYOUTS', 'LAYOUTS',
           'SPLIT_SEED_START', 'SceneFrame', 'SceneMix', 'SyntheticStreetDataset',
           'camera_rotation', 'intrinsics', 'pixel_rays', 'render_scene']
