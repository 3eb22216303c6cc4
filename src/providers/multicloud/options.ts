import { z } from "zod";

export const MulticloudOptionsSchema = z
  .object({
    cloud: z.string().min(1).describe("Backend cloud of the multi-cloud service: aliyun, aws, openstack …"),
    zone: z.string().min(1).optional().describe("ZoneName; the region's first zone when unset"),
    systemDiskCategory: z.string().min(1).default("cloud_efficiency"),
    dataDiskCategory: z.string().min(1).default("cloud_efficiency"),
    dataDiskSize: z.number().int().min(0).default(100),
    dataDiskNum: z.number().int().min(1).max(4).default(1).describe("1 to 4, the service's own limit"),
    keyName: z.string().optional(),
    network: z
      .object({
        vpcId: z.string().default(""),
        subnetId: z.string().default(""),
        securityGroup: z.string().default(""),
        internetChargeType: z.string().default("PayByBandwidth"),
        internetMaxBandwidthOut: z.number().int().min(0).default(5),
      })
      .strict()
      .default({
        vpcId: "",
        subnetId: "",
        securityGroup: "",
        internetChargeType: "PayByBandwidth",
        internetMaxBandwidthOut: 5,
      }),
  })
  .strict();
export type MulticloudOptions = z.infer<typeof MulticloudOptionsSchema>;
