from snnsim.cli import main

main()
