from bot_cli.cli import main


main()
