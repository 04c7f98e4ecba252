"""mkdocs hook: publish the executed notebooks in ``notebooks/`` under ``notebooks/`` of the site.

The notebooks live beside the package, not in ``docs/``, so that they are run and tested where
they are; this adds them to the build before mkdocs-jupyter converts them (higher priority
than the plugin's own ``on_files``). They are rendered as committed, never executed here.
"""

from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File


@event_priority(100)
def on_files(files, config):
    root = Path(config["config_file_path"]).parent / "notebooks"
    for path in sorted(root.glob("*.ipynb")):
        files.append(
            File(
                f"notebooks/{path.name}",
                src_dir=str(root.parent),
                dest_dir=config["site_dir"],
                use_directory_urls=config["use_directory_urls"],
            )
        )
    return files
