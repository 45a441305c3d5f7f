from .cli import run

if __name__ == "__main__":  # not when a spawned process (a local Dask worker) re-imports the main module
    run()
