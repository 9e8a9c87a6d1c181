CREATE INDEX "users_name_trgm_idx" ON "users"."users" USING gin ("name" gin_trgm_ops);--> statement-breakpoint
CREATE INDEX "users_email_trgm_idx" ON "users"."users" USING gin ("email" gin_trgm_ops);