from imaging_bridge.cli import main

main()
