"""flowscale's Gradio app: watch inference-time scaling of flow models happen, step by step.

    python app.py        # serves on GRADIO_SERVER_NAME:GRADIO_SERVER_PORT (default 127.0.0.1:7860)

The layout and handlers live in flowscale/ui; every run goes through flowscale.run.stream, as the CLI's do.
"""

from flowscale.ui import build_demo, launch

demo = build_demo()

if __name__ == "__main__":
    launch(demo)
