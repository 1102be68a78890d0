"""Shapes world: procedural 32x32 scenes of coloured circles, squares and triangles.

Modules: scenes (generator), prompts (parser), detector (deterministic counter and rewards),
image_rewards (weight-free brightness / JPEG rewards), verifier (held-out CNN counter),
model (conditional flow-matching velocity model). Nothing heavy is imported here.
"""
