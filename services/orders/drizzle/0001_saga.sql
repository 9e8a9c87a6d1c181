ALTER TYPE "orders"."order_status" ADD VALUE 'pending';--> statement-breakpoint
ALTER TYPE "orders"."order_status" ADD VALUE 'compensating';--> statement-breakpoint
CREATE INDEX "orders_status_update_time_idx" ON "orders"."orders" USING btree ("status","update_time");