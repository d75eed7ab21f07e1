"""The bot's conversations: subscription, the chat relay, the bot's texts."""
