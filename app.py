"""flowscale's Gradio app: watch inference-time scaling of flow models happen, step by step.

    python app.py        # serves on GRADIO_SERVER_NAME:GRADIO_SERVER_PORT (default 127.0.0.1:7860)

The layout and handlers live in flowscale/ui; every run goes through flowscale.run.stream, as the CLI's do.
"""

import multiprocessing

from flowscale.ui import build_demo, launch

# /run's worker processes (flowscale/ui/workers.py) are spawned and re-import this file: they need no app.
if multiprocessing.parent_process() is None:
    demo = build_demo()

if __name__ == "__main__":
    launch(demo)
