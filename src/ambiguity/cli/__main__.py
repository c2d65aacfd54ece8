from ambiguity.cli import main

main()
