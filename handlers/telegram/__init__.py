"""aiogram routers and middlewares of the bot."""
