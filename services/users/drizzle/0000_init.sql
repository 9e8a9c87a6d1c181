CREATE SCHEMA "users";
--> statement-breakpoint
CREATE TYPE "users"."user_status" AS ENUM('active', 'suspended');--> statement-breakpoint
CREATE TABLE "users"."changes" (
	"revision" bigint PRIMARY KEY NOT NULL,
	"entity_id" text NOT NULL,
	"type" text NOT NULL,
	"data" jsonb NOT NULL,
	"partition" text,
	"commit_time" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "users"."users" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"seq" bigserial NOT NULL,
	"name" text NOT NULL,
	"email" text NOT NULL,
	"status" "users"."user_status" DEFAULT 'active' NOT NULL,
	"create_time" timestamp with time zone DEFAULT now() NOT NULL,
	"update_time" timestamp with time zone DEFAULT now() NOT NULL,
	"version" bigint DEFAULT 1 NOT NULL,
	CONSTRAINT "users_seq_unique" UNIQUE("seq")
);
--> statement-breakpoint
CREATE INDEX "changes_partition_revision_idx" ON "users"."changes" USING btree ("partition","revision");--> statement-breakpoint
CREATE UNIQUE INDEX "users_email_lower_key" ON "users"."users" USING btree (lower("email"));