// The virtual network of the private-networking option: one subnet the Function App
// integrates with (delegated to Microsoft.App/environments, as Flex Consumption requires)
// and one for the private endpoints of storage, Event Hubs, Cosmos DB and Redis.

@description('Required. Name of the virtual network.')
param name string

@description('Optional. Region of the network.')
param location string = resourceGroup().location

@description('Optional. Tags of the network.')
param tags object = {}

@description('Optional. Address space of the network.')
param addressPrefix string = '10.40.0.0/16'

@description('Optional. Subnet of the Function App\'s outbound traffic.')
param appSubnetPrefix string = '10.40.1.0/24'

@description('Optional. Subnet of the private endpoints.')
param privateEndpointSubnetPrefix string = '10.40.2.0/24'

@description('Required. Resource ID of the Log Analytics workspace for diagnostic settings.')
param logAnalyticsResourceId string

resource vnet 'Microsoft.Network/virtualNetworks@2024-05-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressPrefix
      ]
    }
    subnets: [
      {
        name: 'app'
        properties: {
          addressPrefix: appSubnetPrefix
          delegations: [
            {
              name: 'flex-consumption'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
        }
      }
      {
        name: 'private-endpoints'
        properties: {
          addressPrefix: privateEndpointSubnetPrefix
          privateEndpointNetworkPolicies: 'Disabled'
        }
      }
    ]
  }
}

resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: vnet
  properties: {
    workspaceId: logAnalyticsResourceId
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}

@description('The name of the network.')
output name string = vnet.name

@description('The resource ID of the network.')
output resourceId string = vnet.id

@description('The resource ID of the Function App\'s subnet.')
output appSubnetResourceId string = vnet.properties.subnets[0].id

@description('The resource ID of the private endpoints\' subnet.')
output privateEndpointSubnetResourceId string = vnet.properties.subnets[1].id
