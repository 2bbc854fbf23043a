from rnnclf.cli import main

main()
