"""Serving: the HTTP app (`qa serve`), its guards, the OpenAI protocol, the chat page."""
