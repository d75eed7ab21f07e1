"""What every HTTP view shares: errors, body reading, authentication, the request
guard, app keys."""
