from cryptobot.cli import main

main()
