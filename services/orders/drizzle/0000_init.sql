CREATE SCHEMA "orders";
--> statement-breakpoint
CREATE TYPE "orders"."order_status" AS ENUM('confirmed', 'cancelled');--> statement-breakpoint
CREATE TABLE "orders"."changes" (
	"revision" bigint PRIMARY KEY NOT NULL,
	"entity_id" text NOT NULL,
	"type" text NOT NULL,
	"data" jsonb NOT NULL,
	"partition" text,
	"commit_time" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "orders"."orders" (
	"id" uuid PRIMARY KEY NOT NULL,
	"seq" bigserial NOT NULL,
	"user_id" uuid NOT NULL,
	"items" jsonb NOT NULL,
	"total_cents" bigint NOT NULL,
	"status" "orders"."order_status" DEFAULT 'confirmed' NOT NULL,
	"request_id" text,
	"request_fingerprint" text NOT NULL,
	"create_time" timestamp with time zone DEFAULT now() NOT NULL,
	"update_time" timestamp with time zone DEFAULT now() NOT NULL,
	"version" bigint DEFAULT 1 NOT NULL,
	CONSTRAINT "orders_seq_unique" UNIQUE("seq"),
	CONSTRAINT "orders_request_id_unique" UNIQUE("request_id")
);
--> statement-breakpoint
CREATE INDEX "changes_partition_revision_idx" ON "orders"."changes" USING btree ("partition","revision");--> statement-breakpoint
CREATE INDEX "orders_user_seq_idx" ON "orders"."orders" USING btree ("user_id","seq");