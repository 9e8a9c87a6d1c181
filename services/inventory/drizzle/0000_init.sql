CREATE SCHEMA "inventory";
--> statement-breakpoint
CREATE TYPE "inventory"."reservation_status" AS ENUM('held', 'released');--> statement-breakpoint
CREATE TABLE "inventory"."changes" (
	"revision" bigint PRIMARY KEY NOT NULL,
	"entity_id" text NOT NULL,
	"type" text NOT NULL,
	"data" jsonb NOT NULL,
	"partition" text,
	"commit_time" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "inventory"."products" (
	"sku" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"price_cents" bigint NOT NULL,
	"stock" bigint NOT NULL,
	"reserved" bigint DEFAULT 0 NOT NULL,
	"version" bigint DEFAULT 1 NOT NULL,
	CONSTRAINT "products_stock_not_negative" CHECK ("inventory"."products"."stock" >= 0),
	CONSTRAINT "products_reserved_not_negative" CHECK ("inventory"."products"."reserved" >= 0)
);
--> statement-breakpoint
CREATE TABLE "inventory"."reservations" (
	"order_id" text PRIMARY KEY NOT NULL,
	"status" "inventory"."reservation_status" NOT NULL,
	"items" jsonb NOT NULL,
	"create_time" timestamp with time zone DEFAULT now() NOT NULL,
	"release_time" timestamp with time zone
);
--> statement-breakpoint
CREATE INDEX "changes_partition_revision_idx" ON "inventory"."changes" USING btree ("partition","revision");