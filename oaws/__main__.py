from oaws.cli import main

main()
