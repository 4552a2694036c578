from hector.cli import run

run()
