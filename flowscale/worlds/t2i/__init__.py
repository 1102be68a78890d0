"""Text-to-image worlds: FLUX.1 (schnell, dev) and SD3 / SD3.5 through diffusers, as engine FlowModels.

Importing this package is cheap; diffusers and transformers are imported only when a world is built.
`world.py` builds the World, `adapters.py` holds the velocity adapters (time convention of method.md a.1:
t = 1 is noise, u = eps - x0), `availability.py` finds and loads the weights (local folder or hub, with
clear ConfigErrors offline). See docs/t2i.md.
"""
